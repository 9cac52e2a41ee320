"""The environment that points the real ``claude`` CLI at the scripted server.

Owns: the set of environment variables that keep Claude Code offline, fast and
non-interactive when it talks to `SimServer` (why each one is there is in
docs/claude-cli-notes.md).
"""

from __future__ import annotations

SIM_API_KEY = "sk-ant-sim-0000"


def sim_env(base_url: str, *, max_retries: int = 0, config_dir: str | None = None) -> dict[str, str]:
    """Variables for ``ClaudeAgentOptions(env=...)`` or a subprocess environment.

    `max_retries` caps the CLI's own retries of 429/529/5xx answers
    (``CLAUDE_CODE_MAX_RETRIES``); `config_dir` isolates ``~/.claude``.
    """
    env = {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": SIM_API_KEY,
        "IS_SANDBOX": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    if config_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = config_dir
    return env

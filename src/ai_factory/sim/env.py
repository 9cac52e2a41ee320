"""The environment that points the real ``claude`` CLI at the scripted server.

Owns: the set of environment variables that keep Claude Code offline, fast and
non-interactive when it talks to `SimServer` (why each one is there is in
docs/claude-cli-notes.md).
"""

from __future__ import annotations

from ai_factory.worker.agent.env import SCRIPTED_MODEL_VAR

SIM_API_KEY = "sim-api-key"
SIM_OAUTH_TOKEN = "sim-oauth-token"


def sim_env(
    base_url: str,
    *,
    oauth: bool = False,
    max_retries: int = 0,
    config_dir: str | None = None,
) -> dict[str, str]:
    """Variables for ``ClaudeAgentOptions(env=...)`` or a subprocess environment.

    `oauth` authenticates like a Claude subscription (``CLAUDE_CODE_OAUTH_TOKEN``)
    instead of an API key: only then does the CLI read the unified rate-limit
    headers, emit ``rate_limit_event`` messages and word a usage limit as
    "You've hit your 5-hour limit · resets ...". `max_retries` caps the CLI's
    own retries of 429/529/5xx (``CLAUDE_CODE_MAX_RETRIES``, default 10 in the
    CLI). `config_dir` isolates ``~/.claude`` (``CLAUDE_CONFIG_DIR``).
    """
    env = {
        "ANTHROPIC_BASE_URL": base_url,
        # An empty value counts as unset, and overrides one inherited from os.environ.
        "ANTHROPIC_API_KEY": "" if oauth else SIM_API_KEY,
        "CLAUDE_CODE_OAUTH_TOKEN": SIM_OAUTH_TOKEN if oauth else "",
        "IS_SANDBOX": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        SCRIPTED_MODEL_VAR: "1",  # a worker records the scripted model's cost as 0
    }
    if config_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = config_dir
    return env

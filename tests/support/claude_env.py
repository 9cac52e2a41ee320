"""The environment that points the real `claude` binary at the scripted model (`ai_factory.sim`)."""

from __future__ import annotations

from pathlib import Path

from ai_factory.sim import SimServer, sim_env


def claude_env(
    sim: SimServer, tmp_path: Path, *, oauth: bool = False, max_retries: int = 0
) -> dict[str, str]:
    """The CLI's environment for the scripted model (offline, isolated config dir)."""
    return sim_env(
        sim.url, oauth=oauth, max_retries=max_retries, config_dir=str(tmp_path / "claude-config")
    )

"""Settings for tests: no .env file and a private FACTORY_HOME, for the orchestrator and for
an in-process worker talking to a test orchestrator."""

from __future__ import annotations

from pathlib import Path

from ai_factory.core.settings import Settings, load_settings
from tests.support.server import ServerThread


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: no .env file, a private FACTORY_HOME."""
    # Local repositories anywhere but FACTORY_HOME: tests make theirs under tmp_path.
    values: dict[str, object] = {
        "factory_home": tmp_path / "home", "_env_file": None, "local_repo_roots": "/",
    }
    values.update(overrides)
    return load_settings(**values)


def worker_settings(tmp_path: Path, api: ServerThread, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": api.settings.database_url,
        "orchestrator_url": api.url,
        "heartbeat_interval_seconds": 1,
        "max_iterations": 6,
        "stuck_after": 2,
        "iteration_idle_timeout_seconds": 60,
        "iteration_timeout_seconds": 120,
        "gate_timeout_seconds": 60,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)

"""Fixtures of the CLI tests: the environment that points `factory` at the test orchestrator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import ServerThread


@pytest.fixture
def cli_env(api: ServerThread, tmp_path: Path) -> dict[str, str]:
    return {"ORCHESTRATOR_URL": api.url, "FACTORY_HOME": str(tmp_path / "home")}

"""Fixtures shared by the integration tests of several components.

`start_factory` starts orchestrators with their worker runtime and the fake worker
(`tests.support.running_factory`); the orchestrator and CLI tests use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import wait_for
from tests.support.running_factory import FAKE_WORKER, RunningFactory, run_worker_runtime
from tests.support.server import ServerThread
from tests.support.settings import make_settings


@pytest.fixture
def start_factory(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RunningFactory]]:
    started: list[RunningFactory] = []
    markers = tmp_path / "home" / "markers"  # inside FACTORY_HOME: writable in a bwrap sandbox too
    markers.mkdir(parents=True)
    monkeypatch.setenv("FAKE_WORKER_MARKERS", str(markers))

    def start(**overrides: Any) -> RunningFactory:
        values: dict[str, Any] = {
            "database_url": database_url,
            "cooldown_seconds": 0,
            "max_workers": 2,
            "heartbeat_interval_seconds": 0.5,
            "heartbeat_timeout_seconds": 30,
            "health_check_interval_seconds": 0.5,
            "shutdown_grace_seconds": 0,
            "factory_worker_command": f"{sys.executable} {FAKE_WORKER}",
        }
        values.update(overrides)
        settings = make_settings(tmp_path, **values)
        server = ServerThread(settings, components=[run_worker_runtime])
        server.settings = settings.model_copy(
            update={"orchestrator_url": server.url, "port": server.port}
        )
        server.start()
        factory = RunningFactory(server, markers, database_url)
        started.append(factory)
        wait_for(
            lambda: factory.server.services and factory.services.runtime.started.is_set(),
            what="runtime",
        )
        return factory

    yield start
    for factory in started:
        factory.close()

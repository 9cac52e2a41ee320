"""`factory workers`, `factory logs [-f]` and `factory kill` as a user runs them, against a
real orchestrator spawning fake workers."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.polling import wait_for
from tests.support.processes import pid_alive
from tests.support.running_factory import spec


def factory_cli(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250", "ORCHESTRATOR_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "ai_factory", *args],
        capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def test_workers_lists_running_workers_and_kill_stops_one(start_factory) -> None:
    factory = start_factory()
    item = factory.submit(spec(mode="forever"))
    worker = factory.running_worker(item["id"])
    wait_for(lambda: factory.workers()[0]["currentIteration"] == 1, what="a heartbeat with iteration 1")

    listed = factory_cli(factory.server.url, "workers")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if worker["id"][:8] in line)
    assert "busy" in line and "running" in line and item["id"][:8] in line and "ago" in line
    assert " 1 " in line and " 10 " in line  # iteration and tokens from the heartbeat

    killed = factory_cli(factory.server.url, "kill", worker["id"], "--reason", "wrong repo")
    assert killed.returncode == 0, killed.stderr
    wait_for(lambda: not pid_alive(worker["pid"]), what="the worker's process to be gone")
    assert factory.item(item["id"])["error"] == "Killed: wrong repo"
    assert "No workers running" in factory_cli(factory.server.url, "workers").stdout
    again = factory_cli(factory.server.url, "kill", worker["id"])
    assert again.returncode == 1 and "dead" in again.stderr


def test_logs_prints_and_follows_a_workers_output(start_factory) -> None:
    factory = start_factory()
    item = factory.submit(spec(seconds=2))
    factory.wait_status(item["id"], "running")
    followed = factory_cli(factory.server.url, "logs", "-f", item["id"])
    assert followed.returncode == 0, followed.stderr
    assert "fake worker: registered" in followed.stdout and "fake worker: completed" in followed.stdout
    assert factory.item(item["id"])["status"] == "completed"

    printed = factory_cli(factory.server.url, "logs", item["id"])
    assert printed.stdout == followed.stdout

    missing = factory_cli(factory.server.url, "logs", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1 and "not found" in missing.stderr

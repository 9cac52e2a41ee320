"""Worker lifecycle with fencing: crashes, hangs, kills, cancels, shutdown and restarts.

Real Postgres, real processes (the fake worker), real HTTP; the only thing faked is
the worker's work. No timing assertions: every wait is a poll with a generous deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from tests.support.net import free_port
from tests.support.polling import wait_for
from tests.support.processes import pid_alive, wait_until_healthy
from tests.support.running_factory import FAKE_WORKER, spec


def test_sigkilled_worker_is_requeued_and_its_late_result_is_refused(start_factory) -> None:
    factory = start_factory(heartbeat_timeout_seconds=3)
    item = factory.submit(spec(seconds=2))
    first = factory.running_worker(item["id"])
    old_token = factory.token_of(first["id"])
    os.kill(first["pid"], signal.SIGKILL)

    done = factory.wait_status(item["id"], "completed", "failed")
    assert done["status"] == "completed" and done["attempts"] == 2
    assert done["workerId"] != first["id"]
    reasons = [e["reason"] for e in factory.events(item["id"]) if e["toStatus"] == "queued"]
    assert any("without reporting" in (r or "") for r in reasons), reasons
    assert factory.worker_row(first["id"])["status"] == "dead"

    late = factory.http.post(
        f"/api/worker/{first['id']}/complete",
        json={"prUrl": "https://example.invalid/late", "iterations": 1, "tokens": 1},
        headers={"Authorization": f"Bearer {old_token}"},
    )
    assert late.status_code == 409
    assert factory.item(item["id"])["prUrl"] == f"https://example.invalid/pr/{item['id']}"


def test_silent_worker_is_killed_after_the_heartbeat_timeout_then_failed_at_max_attempts(
    start_factory,
) -> None:
    factory = start_factory(heartbeat_timeout_seconds=2, max_attempts=2)
    item = factory.submit(spec(mode="hang"))
    first = factory.running_worker(item["id"])
    failed = factory.wait_status(item["id"], "failed", timeout=90)
    assert failed["attempts"] == 2
    assert "no heartbeat for 2s" in failed["error"]
    statuses = [(e["fromStatus"], e["toStatus"]) for e in factory.events(item["id"]) if e["kind"] == "status"]
    assert ("running", "queued") in statuses and statuses[-1] == ("running", "failed")
    wait_for(lambda: not pid_alive(first["pid"]), what="the hung worker's process to be gone")
    assert all(w["status"] == "dead" for w in factory.workers())


def test_crashing_worker_fails_the_item_with_the_exit_code(start_factory) -> None:
    factory = start_factory(max_attempts=1)
    item = factory.submit(spec(mode="crash", seconds=0.2))
    failed = factory.wait_status(item["id"], "failed")
    assert "code 7" in failed["error"] and "without reporting" in failed["error"]


def test_cancelling_a_running_item_stops_its_process(start_factory) -> None:
    factory = start_factory()
    item = factory.submit(spec(mode="forever"))
    worker = factory.running_worker(item["id"])
    assert factory.http.post(f"/api/work/{item['id']}/cancel").status_code == 200
    wait_for(lambda: not pid_alive(worker["pid"]), what="the cancelled worker's process to be gone")
    assert factory.item(item["id"])["status"] == "cancelled"
    wait_for(lambda: factory.worker_row(worker["id"])["status"] == "dead", what="the worker row to be dead")


def test_killing_a_worker_through_the_api_stops_it_and_fails_the_item(start_factory) -> None:
    factory = start_factory()
    item = factory.submit(spec(mode="forever"))
    worker = factory.running_worker(item["id"])
    killed = factory.http.post(f"/api/workers/{worker['id']}/kill", json={"reason": "looping on tests"})
    assert killed.status_code == 200
    wait_for(lambda: not pid_alive(worker["pid"]), what="the killed worker's process to be gone")
    failed = factory.item(item["id"])
    assert failed["status"] == "failed" and failed["error"] == "Killed: looping on tests"


def test_graceful_shutdown_hands_items_back_without_using_an_attempt(start_factory) -> None:
    factory = start_factory(max_workers=2)
    items = [factory.submit(spec(mode="forever", title=f"T{n}")) for n in range(2)]
    workers = [factory.running_worker(i["id"]) for i in items]
    assert factory.shutdown() == 2
    for item, worker in zip(items, workers, strict=True):
        back = factory.item(item["id"])
        assert back["status"] == "queued" and back["attempts"] == 0, back
        assert not pid_alive(worker["pid"])
    # Stopped for good: nothing is claimed again by this orchestrator.
    time.sleep(1.5)
    assert all(factory.item(i["id"])["status"] == "queued" for i in items)


def test_graceful_shutdown_lets_a_worker_finish_within_the_grace_period(start_factory) -> None:
    factory = start_factory(shutdown_grace_seconds=60)
    item = factory.submit(spec(seconds=1.5))
    factory.running_worker(item["id"])
    assert factory.call(factory.services.runtime.shutdown()) == 0
    assert factory.item(item["id"])["status"] == "completed"


class OrchestratorProcess:
    """`factory orchestrator` as a subprocess on a fixed port, started as often as needed."""

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.markers = tmp_path / "markers"
        self.markers.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "FACTORY_HOME": str(tmp_path / "home"),
            "FACTORY_WORKER_COMMAND": f"{sys.executable} {FAKE_WORKER}",
            "FAKE_WORKER_MARKERS": str(self.markers),
            "COOLDOWN_SECONDS": "0",
            "MAX_WORKERS": "3",
            "HEARTBEAT_INTERVAL_SECONDS": "0.5",
            "HEARTBEAT_TIMEOUT_SECONDS": "60",
            "HEALTH_CHECK_INTERVAL_SECONDS": "0.5",
            "SHUTDOWN_GRACE_SECONDS": "0",
            **env,
        }
        self.env.pop("ORCHESTRATOR_URL", None)
        self.env.pop("REDIS_URL", None)
        self.runs = 0

    def log(self, n: int) -> str:
        return (self.tmp_path / f"orchestrator-{n}.log").read_text()

    def start(self) -> subprocess.Popen:
        self.runs += 1
        n = self.runs
        log = (self.tmp_path / f"orchestrator-{n}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_factory", "orchestrator"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp_path,
        )  # fmt: skip

        wait_until_healthy(self.url, proc, timeout_s=60, output=lambda: self.log(n))
        return proc

    def running_item(self, mode: str) -> tuple[dict, int]:
        """Submit an item whose fake worker behaves as `mode`; the item once it runs, and
        its worker's pid."""
        with httpx.Client(base_url=self.url, timeout=30) as http:
            item = http.post("/api/work", json={"repo": "https://git.example/srv/w.git", "spec": spec(mode=mode)}).json()
            running = wait_for(
                lambda: (i := http.get(f"/api/work/{item['id']}").json())["status"] == "running" and i,
                what="the item to run",
            )
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            (pid,) = conn.execute("SELECT pid FROM workers WHERE id = %s", (running["workerId"],)).fetchone()
        return running, pid


def test_sigterm_to_the_orchestrator_hands_running_items_back(tmp_path: Path, database_url: str) -> None:
    orchestrator = OrchestratorProcess(tmp_path, database_url)
    proc = orchestrator.start()
    item, pid = orchestrator.running_item("forever")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, orchestrator.log(1)
    assert not pid_alive(pid)
    with psycopg.connect(database_url) as conn:
        status, attempts = conn.execute(
            "SELECT status, attempts FROM work_items WHERE id = %s", (item["id"],)
        ).fetchone()
    assert (status, attempts) == ("queued", 0)
    assert "runtime.stopped handed_back=1" in orchestrator.log(1)


def test_a_third_signal_stops_the_orchestrator_without_waiting_for_its_workers(
    tmp_path: Path, database_url: str
) -> None:
    """The first signal waits for the workers, the second hands them back (SIGTERM, then
    SIGKILL after a grace), the third exits at once, leaving the worker to the next start."""
    orchestrator = OrchestratorProcess(tmp_path, database_url, SHUTDOWN_GRACE_SECONDS="60")
    proc = orchestrator.start()
    _, pid = orchestrator.running_item("stubborn")
    try:
        for _ in range(3):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        proc.wait(30)
        assert pid_alive(pid), "the orchestrator waited to kill its worker"
    finally:
        os.kill(pid, signal.SIGKILL)
    assert "orchestrator.exiting_now" in orchestrator.log(1)


def test_orchestrator_killed_mid_run_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, database_url: str
) -> None:
    orchestrator = OrchestratorProcess(tmp_path, database_url)
    markers, url = orchestrator.markers, orchestrator.url
    start = orchestrator.start
    first = start()
    http = httpx.Client(base_url=url, timeout=30)
    ids = [
        http.post("/api/work", json={"repo": "https://git.example/srv/w.git", "spec": spec(seconds=2.5, title=f"T{n}")}).json()["id"]
        for n in range(6)
    ]
    wait_for(
        lambda: sum(1 for i in ids if (markers / f"{i}.jsonl").exists()) >= 2, what="workers to start"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    http.close()
    # One worker dies too while no orchestrator runs: its item must be requeued, not lost.
    with psycopg.connect(database_url) as conn:
        victim_pid, victim = conn.execute(
            "SELECT w.pid, w.work_item_id::text FROM workers w JOIN work_items i ON i.id = w.work_item_id"
            " WHERE i.status = 'running' AND w.pid IS NOT NULL ORDER BY w.created_at LIMIT 1"
        ).fetchone()
    os.kill(victim_pid, signal.SIGKILL)

    second = start()
    http = httpx.Client(base_url=url, timeout=30)
    try:
        wait_for(
            lambda: all(http.get(f"/api/work/{i}").json()["status"] == "completed" for i in ids),
            timeout=120,
            what="every item to complete",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
        http.close()

    with psycopg.connect(database_url) as conn:
        completions = dict(
            conn.execute(
                "SELECT work_item_id::text, count(*) FROM worker_metrics WHERE status = 'completed'"
                " GROUP BY work_item_id"
            ).fetchall()
        )
    assert completions == {i: 1 for i in ids}
    for item_id in ids:
        events = (markers / f"{item_id}.jsonl").read_text().splitlines()
        starts = 2 if item_id == victim else 1  # adopted workers are not started again
        assert sum('"start"' in e for e in events) == starts, events
        assert sum('"completed"' in e for e in events) == 1, events
    log2 = orchestrator.log(2)
    assert "runtime.recovered adopted=" in log2 and "requeued=1" in log2

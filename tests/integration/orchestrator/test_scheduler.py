"""The scheduler against a real orchestrator: real Postgres, process spawner, fake workers.

`start_factory` (tests/integration/conftest.py) serves the API on an ephemeral port with
the worker runtime running beside it, and spawns `tests/support/fake_worker.py` as the
worker command.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ai_factory.orchestrator.services import Services
from tests.support.polling import wait_for
from tests.support.running_factory import FAKE_WORKER, spec
from tests.support.settings import make_settings


def test_submitted_items_are_run_to_completion(start_factory) -> None:
    factory = start_factory()
    items = [factory.submit(spec(seconds=0.2, title=f"T{n}")) for n in range(3)]
    for item in items:
        done = factory.wait_status(item["id"], "completed", "failed")
        assert done["status"] == "completed", done
        assert done["prUrl"] == f"https://example.invalid/pr/{item['id']}"
        wait_for(lambda i=item: len(factory.markers(i["id"])) == 2, what="the worker's completion marker")
        assert [m["event"] for m in factory.markers(item["id"])] == ["start", "completed"]
    kinds = [(e["fromStatus"], e["toStatus"]) for e in factory.events(items[0]["id"]) if e["kind"] == "status"]
    assert kinds == [(None, "queued"), ("queued", "assigned"), ("assigned", "running"), ("running", "completed")]


def test_never_more_workers_than_max_workers(start_factory) -> None:
    factory = start_factory(max_workers=2)
    items = [factory.submit(spec(seconds=1.0, title=f"T{n}")) for n in range(6)]
    most = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [w for w in factory.workers(all=False) if w["status"] in ("idle", "busy")]
        most = max(most, len(running))
        if all(factory.item(i["id"])["status"] in ("completed", "failed") for i in items):
            break
        time.sleep(0.05)
    assert all(factory.item(i["id"])["status"] == "completed" for i in items)
    assert 1 <= most <= 2
    # The workers' own record: at no moment were more than two between start and end.
    spans = []
    for item in items:
        wait_for(lambda i=item: len(factory.markers(i["id"])) == 2, what="the worker's completion marker")
        marks = {m["event"]: m["t"] for m in factory.markers(item["id"])}
        spans.append((marks["start"], marks["completed"]))
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_a_new_item_wakes_the_scheduler_and_survives_a_dropped_listen_connection(start_factory) -> None:
    factory = start_factory()
    first = factory.submit(spec(seconds=0))
    factory.wait_status(first["id"], "completed")

    def listener_pids() -> list[int]:
        with psycopg.connect(factory.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'factory-events'"
                " AND datname = current_database()"
            ).fetchall()
        return [r[0] for r in rows]

    old = wait_for(listener_pids, what="the LISTEN connection")
    with psycopg.connect(factory.database_url, autocommit=True) as conn:
        for pid in old:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # Dispatch goes on (the tick is the backstop), and the listener comes back by itself.
    second = factory.submit(spec(seconds=0))
    assert factory.wait_status(second["id"], "completed", "failed")["status"] == "completed"
    new = wait_for(lambda: [p for p in listener_pids() if p not in old], what="a new LISTEN connection")
    assert new
    third = factory.submit(spec(seconds=0))
    assert factory.wait_status(third["id"], "completed", "failed")["status"] == "completed"


def test_a_worker_that_cannot_start_gives_its_item_back_without_using_an_attempt(start_factory) -> None:
    factory = start_factory(
        factory_worker_command="/nonexistent/factory-worker", max_attempts=2, spawn_retry_seconds=0.5
    )
    item = factory.submit()

    def retried_twice() -> list[dict]:
        trail = factory.http.get(f"/api/work/{item['id']}/events").json()
        back = [e for e in trail if e["toStatus"] == "queued" and "could not start" in (e["reason"] or "")]
        return back if len(back) >= 2 else []

    back = wait_for(retried_twice, what="two failed starts")
    assert "/nonexistent/factory-worker" in back[0]["reason"]
    # An outage of the spawner (engine down, bad command) is not the item's fault: it is
    # neither failed nor charged an attempt, however often the start fails.
    queued = factory.item(item["id"])
    assert queued["status"] in ("queued", "assigned") and queued["attempts"] <= 1
    # Once the command works, the same item runs; the loop is still alive.
    factory.services.runtime.lifecycle.spawner.argv = [sys.executable, str(FAKE_WORKER)]
    assert factory.wait_status(item["id"], "completed", "failed")["status"] == "completed"


def test_max_workers_zero_accepts_work_and_starts_nothing(start_factory) -> None:
    factory = start_factory(max_workers=0)
    item = factory.submit()
    time.sleep(1.5)  # a few scheduler ticks; nothing may start
    assert factory.item(item["id"])["status"] == "queued"
    assert factory.workers() == []


async def test_two_orchestrators_together_never_start_more_than_max_workers(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two orchestrators on one database, their passes at the same moment: MAX_WORKERS=2
    is one limit for both (counting and starting a worker do not interleave)."""
    from ai_factory.core.db.database import Database
    from ai_factory.core.models import CreateWorkItemInput

    monkeypatch.setenv("FAKE_WORKER_MARKERS", str(tmp_path))
    settings = make_settings(
        tmp_path, database_url=database_url, max_workers=2, cooldown_seconds=0,
        shutdown_grace_seconds=0, orchestrator_url="http://127.0.0.1:9",
        factory_worker_command=f"{sys.executable} {FAKE_WORKER}",
    )  # fmt: skip
    dbs = [await Database.open(database_url) for _ in range(2)]
    orchestrators = [Services.build(settings, db) for db in dbs]
    try:
        for n in range(6):
            await orchestrators[0].queue.add(
                CreateWorkItemInput(repo="https://git.example/srv/widgets.git", spec=spec(seconds=30, title=f"T{n}"))
            )
        passes = [o.runtime.scheduler.dispatch() for o in orchestrators for _ in range(3)]
        started = await asyncio.gather(*passes)

        assert sum(started) == 2, started
        assert (await orchestrators[1].rate_limiter.status()).active_workers == 2
        assert (await orchestrators[0].queue.stats()).by_status["queued"] == 4
    finally:
        for orchestrator in orchestrators:
            orchestrator.runtime.hurry()
            await orchestrator.runtime.shutdown()
        for db in dbs:
            await db.close()

"""The worker's heartbeat against a real orchestrator API: it beats, and `stop()` ends it
even when a phase change wakes it at that moment (it used to beat on for ever, so the
worker never exited)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from ai_factory.core.models import WorkerPhase
from ai_factory.worker.client import Heartbeat, OrchestratorClient, Progress
from tests.support.ledger import spawn_record
from tests.support.origin import Origin
from tests.support.server import ServerThread
from tests.support.work_api import api_call, spec_of, submit


def phase_of(api: ServerThread, worker_id: UUID) -> str | None:
    workers = api_call(api, "GET", "/api/workers")
    return next(w["phase"] for w in workers if w["id"] == str(worker_id))


async def test_a_heartbeat_woken_as_it_is_stopped_stops(api: ServerThread, tmp_path: Path) -> None:
    origin = Origin.create(tmp_path)
    spawned = spawn_record(api, submit(api, origin.path, spec_of("Create `a.txt`")))
    client = OrchestratorClient(
        base_url=api.url, worker_id=spawned.worker_id, token=spawned.token
    )
    heartbeat = Heartbeat(client=client, progress=Progress(), interval_s=60)
    try:
        await client.register(spawned.item.id, host="test")
        heartbeat.start()
        heartbeat.set_phase(WorkerPhase.RUNNING, "iteration 1")
        for _ in range(100):  # the beat with the phase is recorded; it waits for the next
            await asyncio.sleep(0.05)
            if await asyncio.to_thread(phase_of, api, spawned.worker_id) == "running":
                break
        assert await asyncio.to_thread(phase_of, api, spawned.worker_id) == "running"
        await asyncio.sleep(0.1)

        heartbeat.set_phase(WorkerPhase.DELIVERING, "pushing")  # wakes it ...
        async with asyncio.timeout(5):
            await heartbeat.stop()  # ... as it is stopped: it ends, the worker can exit
    finally:
        await client.close()

"""The worker's HTTP client against the real API: which refusals mean the lease is gone."""

from __future__ import annotations

import socket
from pathlib import Path
from uuid import uuid4

import pytest

from ai_factory.core.errors import NotFoundError
from ai_factory.core.models import WorkerPhase
from ai_factory.worker.client import LeaseLostError, OrchestratorClient, Progress
from tests.support.ledger import spawn_record
from tests.support.server import ServerThread
from tests.support.work_api import api_call, submit

pytestmark = pytest.mark.e2e


async def test_only_the_workers_own_routes_can_lose_its_lease(
    api: ServerThread, tmp_path: Path
) -> None:
    item = submit(api, "https://git.example/acme/work.git", "# Work\n\n- [ ] one task\n")
    spawned = spawn_record(api, item)
    client = OrchestratorClient(base_url=api.url, worker_id=spawned.worker_id, token=spawned.token)
    try:
        await client.register(item.id, host=socket.gethostname())

        with pytest.raises(NotFoundError, match="fetch the work item"):
            await client.get_item(str(uuid4()), admin_token=None)
        assert not client.lease_lost.is_set(), "a 404 for another resource is just a 404"
        assert await client.heartbeat(Progress(phase=WorkerPhase.RUNNING).request())

        api_call(api, "POST", f"/api/work/{item.id}/cancel")
        with pytest.raises(LeaseLostError):
            await client.heartbeat(Progress(phase=WorkerPhase.RUNNING).request())
        assert client.lease_lost.is_set()
        with pytest.raises(LeaseLostError):  # later calls on its routes stop at once
            await client.lock(["a.txt"])
    finally:
        await client.close()

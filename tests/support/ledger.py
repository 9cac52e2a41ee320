"""Claims made the way the orchestrator makes them, for tests of what follows a claim."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ai_factory.core.db.database import Database
from ai_factory.core.models import WorkItem
from ai_factory.orchestrator.conflicts import PostgresConflictDetector
from ai_factory.orchestrator.ledger import Ledger, WorkerRecord
from ai_factory.orchestrator.queue import QueueManager
from ai_factory.orchestrator.tokens import hash_token, new_worker_token
from tests.support.server import ServerThread


def ledger_on(db: Database) -> Ledger:
    """The ledger as `factory up` builds it without Redis."""
    return Ledger(db=db, conflicts=PostgresConflictDetector(db=db))


def queue_on(db: Database, *, max_attempts: int = 3) -> QueueManager:
    return QueueManager(ledger=ledger_on(db), default_max_attempts=max_attempts)


async def claim_next(ledger: Ledger, *, spawner: str = "process") -> WorkerRecord | None:
    """What the scheduler does: the next item claimed, with its (idle) worker row."""
    worker_id = uuid.uuid4()
    assignment = await ledger.claim_next(
        worker_id=worker_id, token_hash=hash_token(new_worker_token()), spawner=spawner
    )
    return None if assignment is None else await ledger.worker(worker_id)


async def claim_and_start(ledger: Ledger) -> tuple[WorkerRecord, WorkItem]:
    """The next item claimed and its worker registered (the item is running)."""
    record = await claim_next(ledger)
    assert record is not None, "nothing to claim"
    item = await ledger.start(record, host="test")
    return await ledger.worker(record.id), item


async def claim_item(ledger: Ledger, item_id: uuid.UUID) -> WorkerRecord:
    """A named queued item taken by a worker that registers itself (the item is running)."""
    worker_id = uuid.uuid4()
    await ledger.claim(
        item_id, worker_id=worker_id, token_hash=hash_token(new_worker_token()), host="test",
        reason="claimed by a test",
    )  # fmt: skip
    return await ledger.worker(worker_id)


@dataclass
class Spawned:
    """A worker row created the way the scheduler does (the claim creates it)."""

    worker_id: uuid.UUID
    token: str
    item: WorkItem


def spawn_record(api: ServerThread, item: WorkItem) -> Spawned:
    """What the scheduler does before it spawns a worker for `item`, on a running server:
    the claim with the worker's row and the token the worker will be given."""
    services = api.services
    assert services is not None
    worker_id, token = uuid.uuid4(), new_worker_token()
    assignment = api.call(
        services.ledger.claim_next(
            worker_id=worker_id, token_hash=hash_token(token), spawner="process"
        )
    )
    assert assignment is not None and assignment.item.id == item.id, "the item was not next"
    return Spawned(worker_id, token, assignment.item)  # type: ignore[union-attr]

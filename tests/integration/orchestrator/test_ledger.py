"""The ledger on real PostgreSQL: claim order, exclusivity, fencing, attempts, one
transaction per transition."""

import asyncio
import uuid

import psycopg
import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.errors import ConflictError
from ai_factory.core.models import (
    CreateWorkItemInput,
    Priority,
    WorkerCompleteRequest,
    WorkerStatus,
    WorkItemStatus,
)
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.queue import QueueManager
from ai_factory.orchestrator.services import Services
from tests.support.ledger import claim_and_start, claim_item, claim_next, queue_on


@pytest.fixture
def queue(db: Database) -> QueueManager:
    return queue_on(db, max_attempts=3)


@pytest.fixture
def ledger(queue: QueueManager) -> Ledger:
    return queue.ledger


def spec(n: int = 0, **kw) -> CreateWorkItemInput:
    return CreateWorkItemInput(repo=kw.pop("repo", "https://git.example/srv/repo.git"), spec=f"# task {n}\n- [ ] do {n}", **kw)


def report(pr_url: str = "x", iterations: int = 1, tokens: int = 1) -> WorkerCompleteRequest:
    return WorkerCompleteRequest(pr_url=pr_url, iterations=iterations, tokens=tokens)


async def test_claims_follow_priority_then_fifo(queue: QueueManager, ledger: Ledger) -> None:
    order = [Priority.LOW, Priority.MEDIUM, Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.CRITICAL]
    ids = [(await queue.add(spec(i, priority=p)))[0].id for i, p in enumerate(order)]
    claimed = []
    while (record := await claim_next(ledger)) is not None:
        claimed.append(record.worker.work_item_id)
    assert claimed == [ids[2], ids[5], ids[3], ids[1], ids[4], ids[0]]


async def test_claim_sets_a_fresh_lease_and_counts_the_attempt(queue: QueueManager, ledger: Ledger) -> None:
    item, _ = await queue.add(spec())
    first = await claim_next(ledger)
    assert first
    claimed = await ledger.item(item.id)
    assert claimed.status is WorkItemStatus.ASSIGNED and claimed.attempts == 1
    assert first.worker.status is WorkerStatus.IDLE and first.worker.live
    await ledger.requeue(first.id, reason="worker died")
    second = await claim_next(ledger)
    assert second and second.lease_token != first.lease_token
    assert (await ledger.item(item.id)).attempts == 2


async def test_concurrent_claimers_never_get_the_same_item(db: Database, queue: QueueManager, ledger: Ledger) -> None:
    total = 2000
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO work_items (source, source_id, repo, spec)"
            " SELECT 'api', 'bulk-' || g, '/srv/repo', 'spec' FROM generate_series(1, %(n)s) g",
            {"n": total},
        )
    seen: list[uuid.UUID] = []

    async def claimer() -> None:
        while (record := await claim_next(ledger)) is not None:
            seen.append(record.worker.work_item_id)
            await ledger.start(record, host="")
            await ledger.complete(await ledger.worker(record.id), report("x#y"))

    await asyncio.gather(*(claimer() for _ in range(8)))
    assert len(seen) == total and len(set(seen)) == total
    stats = await queue.stats()
    assert stats.completed == total and stats.queued == 0
    assert await ledger.worker_counts() == {}  # every worker row finished with its item


async def test_cancel_of_a_running_item_fences_its_worker(queue: QueueManager, ledger: Ledger) -> None:
    await queue.add(spec())
    record, item = await claim_and_start(ledger)
    cancelled = await queue.cancel(item.id)
    assert cancelled.status is WorkItemStatus.CANCELLED
    with pytest.raises(ConflictError, match="lease is no longer current"):
        await ledger.complete(record, report())
    with pytest.raises(ConflictError, match="it is cancelled"):
        await queue.cancel(item.id)
    # The same transaction finished the worker that held it.
    assert (await ledger.worker(record.id)).worker.status is WorkerStatus.DEAD


async def test_stale_lease_cannot_complete_a_reclaimed_item(queue: QueueManager, ledger: Ledger) -> None:
    await queue.add(spec())
    zombie, item = await claim_and_start(ledger)
    await ledger.requeue(zombie.id, reason="heartbeat missed")
    fresh, again = await claim_and_start(ledger)
    assert again.id == item.id
    with pytest.raises(ConflictError):
        await ledger.complete(zombie, report("z"))
    done = await ledger.complete(fresh, report("ok", iterations=2, tokens=9))
    assert done.pr_url == "ok"


async def test_requeue_past_max_attempts_fails_the_item(queue: QueueManager, ledger: Ledger) -> None:
    item, _ = await queue.add(spec(max_attempts=2))
    for _ in range(2):
        record = await claim_next(ledger)
        assert record
        await ledger.requeue(record.id, reason="worker died")
    last = await ledger.item(item.id)
    assert last.status is WorkItemStatus.FAILED and last.attempts == 2
    assert last.error == "killed: worker died"
    assert await claim_next(ledger) is None


async def test_refunded_requeue_does_not_use_an_attempt(queue: QueueManager, ledger: Ledger) -> None:
    item, _ = await queue.add(spec(max_attempts=1))
    record = await claim_next(ledger)
    assert record
    await ledger.hand_back(record.id, reason="shutdown")
    back = await ledger.item(item.id)
    assert back.status is WorkItemStatus.QUEUED and back.attempts == 0


async def test_has_claimable_agrees_with_claim_next_about_delayed_items(
    queue: QueueManager, ledger: Ledger
) -> None:
    assert not await ledger.has_claimable()
    await queue.add(spec())
    assert await ledger.has_claimable()
    record = await claim_next(ledger)
    assert record and not await ledger.has_claimable()
    await ledger.hand_back(record.id, reason="spawn failed", retry_in_s=60)
    assert not await ledger.has_claimable() and await claim_next(ledger) is None


async def test_every_status_change_is_in_the_audit_trail(queue: QueueManager, ledger: Ledger) -> None:
    item, _ = await queue.add(spec())
    record, _ = await claim_and_start(ledger)
    await ledger.complete(record, report("p", tokens=3))
    events = await queue.events(item.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "queued"),
        ("queued", "assigned"),
        ("assigned", "running"),
        ("running", "completed"),
    ]
    assert events[0].reason == "submitted" and events[-1].reason == "worker completed"


async def test_a_worker_that_registers_itself_claims_starts_and_is_busy_at_once(
    queue: QueueManager, ledger: Ledger
) -> None:
    item, _ = await queue.add(spec())
    record = await claim_item(ledger, item.id)
    assert record.worker.status is WorkerStatus.BUSY and record.worker.spawner == "external"
    assert (await ledger.item(item.id)).status is WorkItemStatus.RUNNING
    with pytest.raises(ConflictError, match="it is running"):
        await claim_item(ledger, item.id)


async def test_kill_fails_the_item_and_a_second_kill_says_there_is_nothing_to_kill(
    queue: QueueManager, ledger: Ledger
) -> None:
    item, _ = await queue.add(spec())
    record, _ = await claim_and_start(ledger)
    killed = await ledger.kill(record.id, reason="by hand")
    assert killed.status is WorkerStatus.DEAD and not killed.live
    failed = await ledger.item(item.id)
    assert failed.status is WorkItemStatus.FAILED and failed.error == "Killed: by hand"
    with pytest.raises(ConflictError, match="nothing to kill"):
        await ledger.kill(record.id, reason="again")


async def test_a_retirement_that_fails_halfway_changes_nothing(
    services: Services, db: Database
) -> None:
    """Item, worker row and locks move together: a broken worker update undoes the requeue."""
    item, _ = await services.queue.add(spec())
    record, _ = await claim_and_start(services.ledger)
    lock = await services.conflicts.acquire(record.id, item.repo, ["a.py"])
    assert lock.acquired == ["a.py"]
    await db.execute(
        "CREATE FUNCTION refuse_dead() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'worker store broken'; END $$;"
        " CREATE TRIGGER refuse_dead BEFORE UPDATE ON workers FOR EACH ROW"
        " WHEN (NEW.status = 'dead') EXECUTE FUNCTION refuse_dead();"
    )
    with pytest.raises(psycopg.Error, match="worker store broken"):
        await services.ledger.requeue(record.id, reason="silent")
    assert (await services.ledger.item(item.id)).status is WorkItemStatus.RUNNING
    assert await services.conflicts.holders(item.repo) == {"a.py": record.id}
    await db.execute("DROP TRIGGER refuse_dead ON workers")
    await services.ledger.requeue(record.id, reason="silent")
    assert (await services.ledger.item(item.id)).status is WorkItemStatus.QUEUED
    assert await services.conflicts.holders(item.repo) == {}

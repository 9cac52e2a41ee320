"""The queue on real PostgreSQL: order, exclusivity, fencing, idempotency."""

import asyncio
import uuid

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.errors import ConflictError, NotFoundError
from ai_factory.core.models import CreateWorkItemInput, Priority, Source, WorkItemStatus
from ai_factory.orchestrator.queue import QueueManager


@pytest.fixture
def queue(db: Database) -> QueueManager:
    return QueueManager(db=db, default_max_attempts=3)


def spec(n: int = 0, **kw) -> CreateWorkItemInput:
    return CreateWorkItemInput(repo=kw.pop("repo", "/srv/repo"), spec=f"# task {n}\n- [ ] do {n}", **kw)


async def test_claims_follow_priority_then_fifo(queue: QueueManager) -> None:
    order = [Priority.LOW, Priority.MEDIUM, Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.CRITICAL]
    ids = [(await queue.add(spec(i, priority=p)))[0].id for i, p in enumerate(order)]
    claimed = []
    while (a := await queue.claim_next()) is not None:
        claimed.append(a.item.id)
    assert claimed == [ids[2], ids[5], ids[3], ids[1], ids[4], ids[0]]


async def test_claim_sets_a_fresh_lease_and_counts_the_attempt(queue: QueueManager) -> None:
    item, _ = await queue.add(spec())
    first = await queue.claim_next()
    assert first and first.item.status is WorkItemStatus.ASSIGNED and first.item.attempts == 1
    await queue.requeue(item.id, first.lease_token, reason="worker died")
    second = await queue.claim_next()
    assert second and second.lease_token != first.lease_token and second.item.attempts == 2


async def test_concurrent_claimers_never_get_the_same_item(db: Database, queue: QueueManager) -> None:
    total = 2000
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO work_items (source, source_id, repo, spec)"
            " SELECT 'api', 'bulk-' || g, '/srv/repo', 'spec' FROM generate_series(1, %(n)s) g",
            {"n": total},
        )
    seen: list[uuid.UUID] = []

    async def claimer() -> None:
        while (a := await queue.claim_next()) is not None:
            seen.append(a.item.id)
            await queue.start(a.item.id, a.lease_token)
            await queue.complete(a.item.id, a.lease_token, pr_url="x#y", iterations=1, tokens=1)

    await asyncio.gather(*(claimer() for _ in range(8)))
    assert len(seen) == total and len(set(seen)) == total
    stats = await queue.stats()
    assert stats.completed == total and stats.queued == 0


async def test_same_source_submitted_twice_returns_the_active_item(queue: QueueManager) -> None:
    body = spec(source=Source.GITHUB, source_id="42", repo="https://github.com/acme/w.git")
    first, created = await queue.add(body)
    again, created_again = await queue.add(body)
    assert created and not created_again and again.id == first.id
    # Once the first is finished, the same issue may be queued afresh.
    await queue.cancel(first.id)
    third, created_third = await queue.add(body)
    assert created_third and third.id != first.id


async def test_api_submissions_get_distinct_generated_source_ids(queue: QueueManager) -> None:
    a, _ = await queue.add(spec())
    b, _ = await queue.add(spec())
    assert a.id != b.id and a.source_id != b.source_id and a.source_id.startswith("api-")


async def test_cancel_of_a_running_item_fences_its_worker(queue: QueueManager) -> None:
    await queue.add(spec())
    a = await queue.claim_next()
    assert a
    await queue.start(a.item.id, a.lease_token)
    cancelled = await queue.cancel(a.item.id)
    assert cancelled.status is WorkItemStatus.CANCELLED
    with pytest.raises(ConflictError, match="lease is no longer current"):
        await queue.complete(a.item.id, a.lease_token, pr_url="x", iterations=1, tokens=1)
    with pytest.raises(ConflictError, match="it is cancelled"):
        await queue.cancel(a.item.id)


async def test_retry_of_a_failed_item_queues_it_with_a_fresh_budget(queue: QueueManager) -> None:
    await queue.add(spec())
    a = await queue.claim_next()
    assert a
    await queue.start(a.item.id, a.lease_token)
    failed = await queue.fail(a.item.id, a.lease_token, error="gate never passed")
    assert failed.status is WorkItemStatus.FAILED and failed.error == "gate never passed"
    retried = await queue.retry(a.item.id)
    assert retried.status is WorkItemStatus.QUEUED and retried.attempts == 0 and retried.error is None
    again = await queue.claim_next()
    assert again and again.item.id == a.item.id


async def test_retry_refuses_items_that_are_not_finished(queue: QueueManager) -> None:
    item, _ = await queue.add(spec())
    with pytest.raises(ConflictError, match="it is queued"):
        await queue.retry(item.id)


async def test_retry_refuses_when_the_source_has_another_active_item(queue: QueueManager) -> None:
    body = spec(source=Source.GITHUB, source_id="7")
    old, _ = await queue.add(body)
    await queue.cancel(old.id)
    await queue.add(body)
    with pytest.raises(ConflictError, match="another item for the same source"):
        await queue.retry(old.id)


async def test_stale_lease_cannot_complete_a_reclaimed_item(queue: QueueManager) -> None:
    await queue.add(spec())
    zombie = await queue.claim_next()
    assert zombie
    await queue.start(zombie.item.id, zombie.lease_token)
    await queue.requeue(zombie.item.id, zombie.lease_token, reason="heartbeat missed")
    fresh = await queue.claim_next()
    assert fresh and fresh.item.id == zombie.item.id
    await queue.start(fresh.item.id, fresh.lease_token)
    with pytest.raises(ConflictError):
        await queue.complete(zombie.item.id, zombie.lease_token, pr_url="z", iterations=1, tokens=1)
    done = await queue.complete(fresh.item.id, fresh.lease_token, pr_url="ok", iterations=2, tokens=9)
    assert done.pr_url == "ok"


async def test_requeue_past_max_attempts_fails_the_item(queue: QueueManager) -> None:
    item, _ = await queue.add(spec(max_attempts=2))
    for _ in range(2):
        a = await queue.claim_next()
        assert a
        last = await queue.requeue(a.item.id, a.lease_token, reason="worker died")
    assert last.status is WorkItemStatus.FAILED and last.attempts == 2
    assert await queue.claim_next() is None


async def test_refunded_requeue_does_not_use_an_attempt(queue: QueueManager) -> None:
    await queue.add(spec(max_attempts=1))
    a = await queue.claim_next()
    assert a
    back = await queue.requeue(a.item.id, a.lease_token, reason="shutdown", refund_attempt=True)
    assert back.status is WorkItemStatus.QUEUED and back.attempts == 0


async def test_has_claimable_agrees_with_claim_next_about_delayed_items(
    queue: QueueManager,
) -> None:
    assert not await queue.has_claimable()
    await queue.add(spec())
    assert await queue.has_claimable()
    a = await queue.claim_next()
    assert a and not await queue.has_claimable()
    await queue.requeue(a.item.id, a.lease_token, reason="spawn failed", delay_s=60)
    assert not await queue.has_claimable() and await queue.claim_next() is None


async def test_every_status_change_is_in_the_audit_trail(queue: QueueManager) -> None:
    item, _ = await queue.add(spec())
    a = await queue.claim_next()
    assert a
    await queue.start(a.item.id, a.lease_token)
    await queue.complete(a.item.id, a.lease_token, pr_url="p", iterations=1, tokens=3)
    events = await queue.events(item.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "queued"),
        ("queued", "assigned"),
        ("assigned", "running"),
        ("running", "completed"),
    ]
    assert events[0].reason == "submitted" and events[-1].reason == "worker completed"


async def test_unknown_and_malformed_ids_are_not_found(queue: QueueManager) -> None:
    for bad in (str(uuid.uuid4()), "not-a-uuid", "1; DROP TABLE work_items"):
        with pytest.raises(NotFoundError):
            await queue.get(bad)
        with pytest.raises(NotFoundError):
            await queue.cancel(bad)


async def test_priority_can_change_while_queued_only(queue: QueueManager) -> None:
    item, _ = await queue.add(spec())
    assert (await queue.set_priority(item.id, Priority.CRITICAL)).priority is Priority.CRITICAL
    await queue.claim_next()
    with pytest.raises(ConflictError):
        await queue.set_priority(item.id, Priority.LOW)

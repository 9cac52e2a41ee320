"""The queue on real PostgreSQL: submission, idempotency, retry, priority, ids."""

import uuid

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.errors import ConflictError, NotFoundError
from ai_factory.core.models import CreateWorkItemInput, Priority, Source, WorkItemStatus
from ai_factory.orchestrator.queue import QueueManager
from tests.support.ledger import claim_and_start, claim_next, queue_on


@pytest.fixture
def queue(db: Database) -> QueueManager:
    return queue_on(db, max_attempts=3)


def spec(n: int = 0, **kw) -> CreateWorkItemInput:
    return CreateWorkItemInput(repo=kw.pop("repo", "https://git.example/srv/repo.git"), spec=f"# task {n}\n- [ ] do {n}", **kw)


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


async def test_retry_of_a_failed_item_queues_it_with_a_fresh_budget(queue: QueueManager) -> None:
    from ai_factory.core.models import WorkerFailRequest

    await queue.add(spec())
    record, item = await claim_and_start(queue.ledger)
    failed = await queue.ledger.fail(record, WorkerFailRequest(error="gate never passed"))
    assert failed.status is WorkItemStatus.FAILED and failed.error == "gate never passed"
    retried = await queue.retry(item.id)
    assert retried.status is WorkItemStatus.QUEUED and retried.attempts == 0 and retried.error is None
    again = await claim_next(queue.ledger)
    assert again and again.worker.work_item_id == item.id


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


async def test_unknown_and_malformed_ids_are_not_found(queue: QueueManager) -> None:
    for bad in (str(uuid.uuid4()), "not-a-uuid", "1; DROP TABLE work_items"):
        with pytest.raises(NotFoundError):
            await queue.get(bad)
        with pytest.raises(NotFoundError):
            await queue.cancel(bad)


async def test_priority_can_change_while_queued_only(queue: QueueManager) -> None:
    item, _ = await queue.add(spec())
    assert (await queue.set_priority(item.id, Priority.CRITICAL)).priority is Priority.CRITICAL
    await claim_next(queue.ledger)
    with pytest.raises(ConflictError):
        await queue.set_priority(item.id, Priority.LOW)

"""A worker's final report is one transaction: item, metrics and worker row, or nothing."""

import psycopg
import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.models import (
    CreateWorkItemInput,
    WorkerCompleteRequest,
    WorkerStatus,
    WorkItemStatus,
)
from ai_factory.orchestrator.services import Services
from tests.support.ledger import claim_and_start

BREAK_METRICS = """
CREATE FUNCTION refuse_metrics() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'metrics store broken'; END $$;
CREATE TRIGGER refuse_metrics BEFORE INSERT ON worker_metrics
  FOR EACH ROW EXECUTE FUNCTION refuse_metrics();
"""


async def test_a_complete_that_fails_halfway_changes_nothing_and_can_be_sent_again(
    services: Services, db: Database
) -> None:
    item, _ = await services.queue.add(CreateWorkItemInput(repo="https://git.example/srv/r.git", spec="- [ ] x"))
    record, _ = await claim_and_start(services.ledger)
    worker = record.worker
    report = WorkerCompleteRequest(pr_url="https://example.test/pr/1", iterations=2, tokens=10)
    await db.execute(BREAK_METRICS)

    with pytest.raises(psycopg.Error, match="metrics store broken"):
        await services.workers.complete(record, report)

    assert (await services.queue.get(item.id)).status is WorkItemStatus.RUNNING
    assert (await services.workers.get(worker.id)).status is not WorkerStatus.DONE
    await db.execute("DROP TRIGGER refuse_metrics ON worker_metrics")
    done = await services.workers.complete(await services.ledger.worker(worker.id), report)
    assert done.status is WorkItemStatus.COMPLETED and done.pr_url == report.pr_url
    assert (await services.workers.get(worker.id)).status is WorkerStatus.DONE
    rows = await db.fetch_all("SELECT status FROM worker_metrics WHERE worker_id = %(id)s",
                              {"id": worker.id})  # fmt: skip
    assert [r["status"] for r in rows] == ["completed"]

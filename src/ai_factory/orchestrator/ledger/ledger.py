"""The ledger: the one owner of work-item and worker state.

Every change to `work_items` and `workers` is a method of `Ledger` (the worker
transitions here, the item actions users and intake take in `items`), and each is one
transaction: the item row, the worker row, the worker's metrics, the audit event
and the release of the worker's file locks commit together or not at all. The
scheduler, the lifecycle, the health check, recovery and the API decide *when*;
the ledger decides nothing but whether a transition still applies.

Fencing: a claim hands out a fresh lease token; every later transition names its
source status and that lease (ledger.sql). A transition that no longer applies
raises `ConflictError` (HTTP 409) saying what state the item is in, never a
silent no-op. The status trigger writes the audit event and NOTIFYs listeners.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import ConflictError
from ai_factory.core.models import (
    IterationReport,
    LimitReport,
    WorkAssignment,
    Worker,
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerHeartbeatRequest,
    WorkerStatus,
    WorkerStuckRequest,
    WorkItem,
    WorkItemEvent,
)
from ai_factory.orchestrator.ledger.items import ItemActions
from ai_factory.orchestrator.ledger.records import Orphan, WorkerRecord
from ai_factory.orchestrator.spawners.base import WorkerHandle

log = logging.getLogger(__name__)

Q = load_queries("ledger")

DISPATCH_LOCK_KEY = int.from_bytes(b"aifdispt", "big")  # any fixed 64-bit key of our own

# How an item leaves a retired worker: (item id, lease) -> the fenced transition.
ItemChange = Callable[[UUID, UUID], Awaitable[Any]]


class Ledger(ItemActions):
    """The item actions, and every transition of a worker and the item it holds."""

    # --- claims and starts ---

    @asynccontextmanager
    async def dispatch_turn(self) -> AsyncIterator[None]:
        """One dispatch pass at a time across every orchestrator on the database, so that
        counting live workers and creating one never interleave with another pass."""
        async with self.db.advisory_lock(DISPATCH_LOCK_KEY):
            yield

    async def claim_next(
        self, *, worker_id: UUID, token_hash: str, spawner: str, reason: str = "claimed"
    ) -> WorkAssignment | None:
        """Claim the most urgent, oldest queued item and create its (idle) worker row, in one
        statement; None when the queue is empty."""
        row = await self.db.fetch_one(
            Q["claim_next"],
            {"worker_id": worker_id, "token_hash": token_hash, "spawner": spawner, "host": "",
             "reason": reason},
        )  # fmt: skip
        if row is None:
            return None
        log.info("work.claim_next id=%s worker=%s", row["id"], worker_id)
        return WorkAssignment(item=WorkItem.model_validate(row), lease_token=row["lease_token"])

    async def claim(
        self, item_id: str | UUID, *, worker_id: UUID, token_hash: str, host: str, reason: str
    ) -> WorkAssignment:
        """A worker that registers itself takes one named queued item: claimed, its worker row
        created and busy, the item running."""
        async with self.db.transaction():
            params = {"id": await self.item_id(item_id), "worker_id": worker_id, "reason": reason}
            claimed = await self._transition("claim", params, "claim")
            lease = claimed["lease_token"]
            await self.db.execute(
                Q["insert_worker"],
                {"id": worker_id, "work_item_id": claimed["id"], "lease_token": lease,
                 "token_hash": token_hash, "spawner": "external", "host": host},
            )  # fmt: skip
            item = await self._transition(
                "start", {"id": claimed["id"], "lease_token": lease, "reason": "worker registered"},
                "start",
            )  # fmt: skip
            await self.db.execute(Q["mark_busy"], {"id": worker_id, "host": host})
        return WorkAssignment(item=WorkItem.model_validate(item), lease_token=lease)

    async def start(self, record: WorkerRecord, *, host: str) -> WorkItem:
        """A spawned worker registered: its item runs (unless it already does under this
        worker: a repeated register) and the worker is busy."""
        assert record.worker.work_item_id is not None
        async with self.db.transaction():
            item = await self.item(record.worker.work_item_id)
            if item.status.value != "running":
                params = {"id": item.id, "lease_token": record.lease, "reason": "worker registered"}
                item = WorkItem.model_validate(await self._transition("start", params, "start"))
            elif item.worker_id != record.id:
                raise ConflictError(f"work item {item.id} is running on another worker")
            if await self.db.fetch_one(Q["mark_busy"], {"id": record.id, "host": host}) is None:
                raise ConflictError(f"worker {record.id} is {record.worker.status}; it cannot register")
        return item

    async def record_handle(self, worker_id: UUID, handle: WorkerHandle) -> None:
        await self.db.execute(
            Q["set_handle"],
            {"id": worker_id, "pid": handle.pid, "pid_start": handle.pid_start,
             "spawn_host": handle.spawn_host, "container_id": handle.container_id},
        )  # fmt: skip

    async def record_exit(self, worker_id: UUID, exit_code: int | None) -> None:
        await self.db.execute(Q["record_exit"], {"id": worker_id, "exit_code": exit_code})

    async def adopt(self, worker_id: UUID, item_id: UUID, *, how: str) -> None:
        """An orchestrator that restarted watches a worker it finds still running."""
        await self.note(item_id, "adopted", f"worker {worker_id} adopted after a restart ({how})",
                        {"workerId": str(worker_id)})  # fmt: skip

    # --- a working worker's reports ---

    async def heartbeat(self, record: WorkerRecord, beat: WorkerHeartbeatRequest) -> Worker:
        async with self.db.transaction():
            row = await self.db.fetch_one(
                Q["heartbeat"],
                {"id": record.id, "iteration": beat.iteration, "tokens": beat.tokens,
                 "cost_usd": beat.cost_usd, "phase": beat.phase.value},
            )  # fmt: skip
            if row is None:
                await self.held_item(record, "heartbeat")  # raises, saying why
                raise ConflictError(f"worker {record.id} is {record.worker.status}")
            if row["previous_phase"] != beat.phase.value:
                await self.note(
                    row["work_item_id"],
                    "phase",
                    beat.message or f"phase {beat.phase.value}",
                    {"phase": beat.phase.value, "iteration": beat.iteration, "workerId": str(record.id)},
                )
        return Worker.model_validate(row)

    async def record_iteration(self, record: WorkerRecord, report: IterationReport) -> bool:
        """Store one finished iteration (idempotent per worker and number)."""
        async with self.db.transaction():
            item = await self.held_item(record, "record an iteration for")
            row = await self.db.fetch_one(
                Q["record_iteration"],
                {
                    "worker_id": record.id,
                    "work_item_id": item.id,
                    "number": report.iteration,
                    "input_tokens": report.input_tokens,
                    "output_tokens": report.output_tokens,
                    "cache_tokens": report.cache_read_tokens + report.cache_creation_tokens,
                    "cost_usd": report.cost_usd,
                    "duration_ms": report.duration_ms,
                    "outcome": report.outcome.value,
                },
            )
            if row is None:
                return False
            await self.note(
                item.id,
                "iteration",
                report.message or f"iteration {report.iteration}: {report.outcome.value}",
                report.model_dump(mode="json", by_alias=True, exclude={"message"}),
            )
        return True

    async def record_limit(self, record: WorkerRecord, report: LimitReport) -> WorkItem:
        """Note a subscription limit the worker's agent ran into (or came close to)."""
        item = await self.held_item(record, "report a limit for")
        await self.note(
            item.id,
            "limit",
            report.message or f"usage limit {report.status.value}",
            report.model_dump(mode="json", by_alias=True, exclude={"message"}),
        )
        return item

    async def note(
        self, item_id: UUID, kind: str, reason: str, data: dict[str, Any] | None = None
    ) -> WorkItemEvent:
        """An event on the item's audit trail (status changes are written by the trigger)."""
        row = await self.db.fetch_one(
            Q["add_event"], {"id": item_id, "kind": kind, "reason": reason, "data": Jsonb(data or {})}
        )
        assert row is not None
        return WorkItemEvent.model_validate(row)

    # --- a worker's own end ---

    async def complete(self, record: WorkerRecord, result: WorkerCompleteRequest) -> WorkItem:
        return await self._finish(
            record,
            "complete",
            {"pr_url": result.pr_url, "iterations": result.iterations, "tokens": result.tokens,
             "cost_usd": result.cost_usd, "reason": "worker completed"},
            WorkerStatus.DONE,
            metrics={"status": "completed", "iterations": result.iterations, "tokens": result.tokens,
                     "cost_usd": result.cost_usd, "files_changed": len(result.files_changed)},
        )  # fmt: skip

    async def fail(self, record: WorkerRecord, report: WorkerFailRequest) -> WorkItem:
        seen = record.worker
        return await self._finish(
            record,
            "fail",
            {"error": report.error, "reason": "worker failed",
             "iterations": max(report.iteration, seen.current_iteration),
             "tokens": seen.total_tokens, "cost_usd": seen.cost_usd},
            WorkerStatus.DONE,
            metrics={"status": "failed", "iterations": report.iteration,
                     "tokens": seen.total_tokens, "cost_usd": seen.cost_usd, "files_changed": 0},
        )  # fmt: skip

    async def stuck(self, record: WorkerRecord, report: WorkerStuckRequest) -> WorkItem:
        seen = record.worker
        totals = {"iterations": seen.current_iteration, "tokens": seen.total_tokens,
                  "cost_usd": seen.cost_usd}  # fmt: skip
        return await self._finish(
            record,
            "mark_stuck",
            {"error": report.reason, "reason": "worker stuck", **totals},
            WorkerStatus.STUCK,
            metrics={"status": "stuck", "files_changed": 0, **totals},
        )

    # --- ends the orchestrator decides ---

    async def requeue(self, worker_id: UUID, *, reason: str) -> Worker:
        """The worker crashed, went silent or vanished: its item is queued again with the
        attempt counted (failed once attempts are used up)."""
        return await self._retire(worker_id, reason, self._requeue(f"killed: {reason}", refund=False))

    async def hand_back(self, worker_id: UUID, *, reason: str, retry_in_s: float = 0.0) -> Worker:
        """Not the item's fault (shutdown, the worker could not start): queued again with the
        attempt refunded, held back `retry_in_s`."""
        change = self._requeue(f"killed: {reason}", refund=True, delay_s=retry_in_s)
        return await self._retire(worker_id, reason, change)

    async def kill(self, worker_id: str | UUID, *, reason: str) -> Worker:
        """A user killed the worker: its item fails with the reason."""

        async def fail(item_id: UUID, lease: UUID) -> Any:
            params = {"id": item_id, "lease_token": lease, "error": f"Killed: {reason}",
                      "reason": "worker killed", "iterations": 0, "tokens": 0, "cost_usd": 0.0}  # fmt: skip
            return await self.db.fetch_one(Q["fail"], params)

        return await self._retire(await self.worker_id(worker_id), reason, fail)

    async def release_orphan(self, orphan: Orphan, *, reason: str) -> bool:
        """A claimed item no live worker holds goes back, attempt refunded; False if it moved on."""
        change = self._requeue(reason, refund=True)
        return await change(orphan.id, orphan.lease_token) is not None

    # --- helpers ---

    def _requeue(self, reason: str, *, refund: bool, delay_s: float = 0.0) -> ItemChange:
        async def requeue(item_id: UUID, lease: UUID) -> Any:
            params = {"id": item_id, "lease_token": lease, "reason": reason, "refund": refund,
                      "delay_s": delay_s}  # fmt: skip
            row = await self.db.fetch_one(Q["requeue"], params)
            if row is not None:
                log.info("work.requeue id=%s status=%s", row["id"], row["status"])
            return row

        return requeue

    async def _retire(self, worker_id: UUID, reason: str, change: ItemChange) -> Worker:
        """Finish a live worker as dead: the item first (once its lease moves on, the worker's
        reports are refused), then the row, then its locks; one transaction."""
        async with self.db.transaction():
            row = await self.db.fetch_one(Q["lock_live_worker"], {"id": worker_id})
            if row is None:
                record = await self.worker(worker_id)  # NotFoundError for an unknown id
                raise ConflictError(f"worker {worker_id} is {record.worker.status}; nothing to kill")
            if row["work_item_id"] is not None and row["lease_token"] is not None:
                await change(row["work_item_id"], row["lease_token"])  # no row: it moved on
            finished = await self.db.fetch_one(Q["finish_worker"], {"id": worker_id, "status": "dead"})
            await self._release_in_transaction([worker_id])
        await self._release_after([worker_id])
        log.warning("worker.killed worker=%s reason=%s", worker_id, reason)
        assert finished is not None
        return Worker.model_validate(finished)

    async def _finish(
        self,
        record: WorkerRecord,
        query: str,
        params: dict[str, Any],
        status: WorkerStatus,
        *,
        metrics: dict[str, Any],
    ) -> WorkItem:
        """A worker's own end (complete, fail, stuck): the item, the worker's metrics and
        its row, and its locks, in one transaction. Returns the settled item."""
        action = {"mark_stuck": "report stuck"}.get(query, query)
        async with self.db.transaction():
            item = await self.held_item(record, action)
            row = await self._transition(query, {"id": item.id, "lease_token": record.lease, **params},
                                         action)  # fmt: skip
            await self.db.execute(Q["insert_metrics"], {"id": record.id, **metrics})
            await self.db.execute(Q["finish_worker"], {"id": record.id, "status": status.value})
            await self._release_in_transaction([record.id])
        await self._release_after([record.id])
        return WorkItem.model_validate(row)

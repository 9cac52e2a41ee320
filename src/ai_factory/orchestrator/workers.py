"""Worker lifecycle records (the reference's WorkerManager), fenced by lease tokens.

A worker is created either at spawn (the orchestrator claims an item, creates the
worker row with a per-worker token and hands both to the new process) or when an
external worker registers itself for a queued item. Every later call carries the
worker's token; the item transitions it causes name the worker's lease token, so a
worker whose lease is no longer current gets `ConflictError` and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import AuthError, ConflictError, NotFoundError, StoreError
from ai_factory.core.models import (
    IterationReport,
    LimitReport,
    WorkAssignment,
    Worker,
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerHeartbeatRequest,
    WorkerRegisterRequest,
    WorkerRegisterResponse,
    WorkerStats,
    WorkerStatus,
    WorkerStuckRequest,
    WorkItem,
)
from ai_factory.orchestrator.conflicts import ConflictDetector
from ai_factory.orchestrator.queue import QueueManager, parse_id
from ai_factory.orchestrator.tokens import hash_token, new_worker_token, token_matches

log = logging.getLogger(__name__)

Q = load_queries("workers")

@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker row as the orchestrator sees it, secrets included."""

    worker: Worker
    lease_token: UUID | None
    token_hash: str

    @property
    def id(self) -> UUID:
        return self.worker.id

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerRecord:
        return cls(Worker.model_validate(row), row["lease_token"], row["token_hash"])


class LearningSink(Protocol):
    """What the worker manager needs from the learnings store."""

    async def save_many(
        self, repo: str, contents: list[str], *, worker_id: UUID, work_item_id: UUID
    ) -> None: ...


class HeartbeatLeases(Protocol):
    """Where a worker's liveness lease is refreshed (Redis key with a TTL, or nothing extra)."""

    async def beat(self, worker_id: UUID) -> None: ...


class WorkerManager:
    def __init__(
        self,
        *,
        db: Database,
        queue: QueueManager,
        conflicts: ConflictDetector,
        learnings: LearningSink | None = None,
        leases: HeartbeatLeases | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.conflicts = conflicts
        self.learnings = learnings
        self.leases = leases

    # --- creation and registration ---

    async def create(
        self,
        assignment: WorkAssignment,
        *,
        worker_id: UUID | None = None,
        spawner: str = "external",
        container_id: str = "",
        host: str = "",
        status: WorkerStatus = WorkerStatus.IDLE,
    ) -> tuple[Worker, str]:
        """Record a worker for a claimed item; return it with its (only) clear-text token."""
        token = new_worker_token()
        row = await self.db.fetch_one(
            Q["insert"],
            {
                "id": worker_id or assignment.item.worker_id or uuid.uuid4(),
                "container_id": container_id,
                "work_item_id": assignment.item.id,
                "lease_token": assignment.lease_token,
                "token_hash": hash_token(token),
                "status": status.value,
                "spawner": spawner,
                "host": host,
            },
        )
        assert row is not None
        return Worker.model_validate(row), token

    async def register(
        self, request: WorkerRegisterRequest, *, token: str | None
    ) -> WorkerRegisterResponse:
        """Start work on an item.

        A spawned worker names itself and proves it with the token issued at spawn.
        A worker without one claims the queued item and receives a fresh token.
        """
        if request.worker_id is None:
            return await self._register_external(request)
        record = await self.authenticate(request.worker_id, token)
        if record.worker.work_item_id != request.work_item_id or record.lease_token is None:
            raise ConflictError(f"worker {record.id} was not assigned work item {request.work_item_id}")
        item = await self.queue.get(request.work_item_id)
        if item.status.value != "running":
            await self.queue.start(item.id, record.lease_token)
        elif item.worker_id != record.id:
            raise ConflictError(f"work item {item.id} is running on another worker")
        if await self.db.fetch_one(Q["mark_busy"], {"id": record.id, "host": request.host}) is None:
            raise ConflictError(f"worker {record.id} is {record.worker.status}; it cannot register")
        if self.leases is not None:
            await self.leases.beat(record.id)
        log.info("worker.registered worker=%s item=%s", record.id, item.id)
        return WorkerRegisterResponse(worker_id=record.id, lease_token=record.lease_token)

    async def _register_external(self, request: WorkerRegisterRequest) -> WorkerRegisterResponse:
        worker_id = uuid.uuid4()
        assignment = await self.queue.claim(
            request.work_item_id, worker_id=worker_id, reason="claimed by a registering worker"
        )
        _, token = await self.create(assignment, worker_id=worker_id, host=request.host)
        await self.queue.start(assignment.item.id, assignment.lease_token)
        await self.db.fetch_one(Q["mark_busy"], {"id": worker_id, "host": request.host})
        log.info("worker.registered worker=%s item=%s external=true", worker_id, assignment.item.id)
        return WorkerRegisterResponse(
            worker_id=worker_id, lease_token=assignment.lease_token, token=token
        )

    async def authenticate(self, worker_id: str | UUID, token: str | None) -> WorkerRecord:
        """The worker named in the path, if the token is its own (404 unknown, 401 wrong)."""
        record = await self.get_record(worker_id)
        if not token_matches(token, record.token_hash):
            raise AuthError("invalid worker token")
        return record

    async def get_record(self, worker_id: str | UUID) -> WorkerRecord:
        row = await self.db.fetch_one(Q["get"], {"id": parse_id(worker_id, "worker")})
        if row is None:
            raise NotFoundError(f"worker {worker_id} not found")
        return WorkerRecord.from_row(row)

    # --- reports from a working worker ---

    async def heartbeat(self, record: WorkerRecord, beat: WorkerHeartbeatRequest) -> Worker:
        row = await self.db.fetch_one(
            Q["heartbeat"],
            {
                "id": record.id,
                "iteration": beat.iteration,
                "tokens": beat.tokens,
                "cost_usd": beat.cost_usd,
                "phase": beat.phase.value,
            },
        )
        if row is None:
            await self.current_item(record, "heartbeat")  # raises, saying why
            raise ConflictError(f"worker {record.id} is {record.worker.status}")
        await self.conflicts.renew(record.id)
        if self.leases is not None:
            await self.leases.beat(record.id)
        if row["previous_phase"] != beat.phase.value:
            await self.queue.add_event(
                row["work_item_id"],
                "phase",
                beat.message or f"phase {beat.phase.value}",
                {"phase": beat.phase.value, "iteration": beat.iteration, "workerId": str(record.id)},
            )
        return Worker.model_validate(row)

    async def record_iteration(self, record: WorkerRecord, report: IterationReport) -> bool:
        """Store one finished iteration (idempotent per worker and number)."""
        item = await self.current_item(record, "record an iteration for")
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
        await self.queue.add_event(
            item.id,
            "iteration",
            report.message or f"iteration {report.iteration}: {report.outcome.value}",
            report.model_dump(mode="json", by_alias=True, exclude={"message"}),
        )
        return True

    async def record_limit(self, record: WorkerRecord, report: LimitReport) -> None:
        """Note a subscription limit the worker's agent ran into (or came close to)."""
        item = await self.current_item(record, "report a limit for")
        await self.queue.add_event(
            item.id,
            "limit",
            report.message or f"usage limit {report.status.value}",
            report.model_dump(mode="json", by_alias=True, exclude={"message"}),
        )

    async def complete(self, record: WorkerRecord, result: WorkerCompleteRequest) -> WorkItem:
        item = await self.current_item(record, "complete")
        done = await self._finish(
            record,
            lambda: self.queue.complete(
                item.id,
                self._lease(record),
                pr_url=result.pr_url,
                iterations=result.iterations,
                tokens=result.tokens,
                cost_usd=result.cost_usd,
            ),
            WorkerStatus.DONE,
            metrics_status="completed",
            iterations=result.iterations,
            tokens=result.tokens,
            cost_usd=result.cost_usd,
            files_changed=len(result.files_changed),
        )
        if self.learnings and result.new_learnings:
            try:
                await self.learnings.save_many(
                    done.repo, result.new_learnings, worker_id=record.id, work_item_id=done.id
                )
            except Exception:  # the item is done; losing a note must not fail the report
                log.exception("worker.learnings_not_saved worker=%s item=%s", record.id, done.id)
        return done

    async def fail(self, record: WorkerRecord, report: WorkerFailRequest) -> WorkItem:
        item = await self.current_item(record, "fail")
        return await self._finish(
            record,
            lambda: self.queue.fail(
                item.id,
                self._lease(record),
                error=report.error,
                iterations=max(report.iteration, record.worker.current_iteration),
                tokens=record.worker.total_tokens,
                cost_usd=record.worker.cost_usd,
            ),
            WorkerStatus.DONE,
            metrics_status="failed",
            iterations=report.iteration,
            tokens=record.worker.total_tokens,
            cost_usd=record.worker.cost_usd,
        )

    async def stuck(self, record: WorkerRecord, report: WorkerStuckRequest) -> WorkItem:
        item = await self.current_item(record, "report stuck")
        return await self._finish(
            record,
            lambda: self.queue.mark_stuck(
                item.id,
                self._lease(record),
                reason=report.reason,
                iterations=record.worker.current_iteration,
                tokens=record.worker.total_tokens,
                cost_usd=record.worker.cost_usd,
            ),
            WorkerStatus.STUCK,
            metrics_status="stuck",
            iterations=record.worker.current_iteration,
            tokens=record.worker.total_tokens,
            cost_usd=record.worker.cost_usd,
        )

    # --- administration ---

    async def kill(
        self,
        worker_id: str | UUID,
        *,
        reason: str,
        requeue: bool = False,
        refund_attempt: bool = False,
        retry_in_s: float = 0.0,
    ) -> Worker:
        """Mark a worker dead, free its locks, and fail (or requeue) its item.

        With ``refund_attempt`` (graceful shutdown, a worker that could not start) a
        requeued item keeps its attempts; ``retry_in_s`` holds it back that long.
        """
        record = await self.get_record(worker_id)
        if not record.worker.live:
            raise ConflictError(f"worker {record.id} is {record.worker.status}; nothing to kill")
        # The item first: once its lease moves on, the worker's reports are refused.
        item_id = record.worker.work_item_id
        if item_id is not None and record.lease_token is not None:
            try:
                if requeue:
                    await self.queue.requeue(
                        item_id,
                        record.lease_token,
                        reason=f"killed: {reason}",
                        refund_attempt=refund_attempt,
                        delay_s=retry_in_s,
                    )
                else:
                    await self.queue.fail(
                        item_id, record.lease_token, error=f"Killed: {reason}", reason="worker killed"
                    )
            except ConflictError:
                pass  # the item moved on (cancelled, finished, re-claimed); leave it be
        row = await self.db.fetch_one(Q["finish"], {"id": record.id, "status": "dead"})
        await self._release_locks(record.id)
        log.warning("worker.killed worker=%s reason=%s", record.id, reason)
        return Worker.model_validate(row) if row else await self.get(record.id)

    async def get(self, worker_id: str | UUID) -> Worker:
        return (await self.get_record(worker_id)).worker

    async def list(self, *, include_finished: bool = False, limit: int = 200) -> list[Worker]:
        rows = await self.db.fetch_all(Q["list"], {"all": include_finished, "limit": limit})
        return [Worker.model_validate(r) for r in rows]

    async def stats(self) -> WorkerStats:
        counts = {r["status"]: r["n"] for r in await self.db.fetch_all(Q["stats"])}
        return WorkerStats(
            active=counts.get("busy", 0) + counts.get("idle", 0), stuck=counts.get("stuck", 0)
        )

    # --- helpers ---

    async def current_item(self, record: WorkerRecord, action: str) -> WorkItem:
        """The item this worker still holds the lease of; `ConflictError` otherwise.

        A worker that was finished (killed, timed out) or whose item moved on (cancelled,
        requeued, claimed by another worker) may no longer act on it: no locks, no
        iteration or limit reports, no result.
        """
        row = await self.db.fetch_one(Q["current_item"], {"id": record.id})
        if row is not None:
            return WorkItem.model_validate(row)
        if record.worker.work_item_id is None:
            raise ConflictError(f"worker {record.id} has no work item to {action}")
        item = await self.queue.get(record.worker.work_item_id)
        if not record.worker.live:
            raise ConflictError(f"cannot {action}: worker {record.id} is {record.worker.status}")
        raise ConflictError(
            f"cannot {action}: work item {item.id} is {item.status} and this worker's lease"
            " is no longer current"
        )

    @staticmethod
    def _lease(record: WorkerRecord) -> UUID:
        assert record.lease_token is not None
        return record.lease_token

    async def _finish(
        self,
        record: WorkerRecord,
        move_item: Callable[[], Awaitable[WorkItem]],
        status: WorkerStatus,
        *,
        metrics_status: str,
        iterations: int,
        tokens: int,
        cost_usd: float,
        files_changed: int = 0,
    ) -> WorkItem:
        """A worker's own end (complete, fail, stuck): `move_item` settles the item, and the
        metrics and the worker row are written in the same transaction (all or none);
        then the worker's locks are freed. Returns the settled item."""
        async with self.db.transaction():
            item = await move_item()
            await self.db.execute(
                Q["insert_metrics"],
                {
                    "id": record.id,
                    "iterations": iterations,
                    "tokens": tokens,
                    "cost_usd": cost_usd,
                    "files_changed": files_changed,
                    "status": metrics_status,
                },
            )
            await self.db.execute(Q["finish"], {"id": record.id, "status": status.value})
        await self._release_locks(record.id)
        return item

    async def _release_locks(self, worker_id: UUID) -> None:
        """Best effort: a lock left behind expires with its TTL."""
        try:
            await self.conflicts.release_all(worker_id)
        except StoreError as exc:
            log.warning("worker.locks_not_released worker=%s error=%s", worker_id, exc)

"""The worker → orchestrator protocol (`WorkerManager`).

A worker is created either at spawn (the lifecycle claims an item, the ledger
creates the worker row with a per-worker token, the spawner hands both to the new
process) or when an external worker registers itself for a queued item. Every
later call carries the worker's token; the ledger fences what the call changes by
the worker's lease, so a worker whose lease is no longer current gets
`ConflictError` and changes nothing. Around the ledger this module keeps what is
not item or worker state: tokens, the Redis heartbeat lease, lock renewal and the
learnings a finished worker brings back.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol
from uuid import UUID

from ai_factory.core.errors import AuthError, ConflictError
from ai_factory.core.models import (
    IterationReport,
    LimitReport,
    Worker,
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerHeartbeatRequest,
    WorkerRegisterRequest,
    WorkerRegisterResponse,
    WorkerStats,
    WorkerStuckRequest,
    WorkItem,
)
from ai_factory.orchestrator.conflicts import ConflictDetector
from ai_factory.orchestrator.ledger import Ledger, WorkerRecord
from ai_factory.orchestrator.tokens import hash_token, new_worker_token, token_matches

log = logging.getLogger(__name__)


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
        ledger: Ledger,
        conflicts: ConflictDetector,
        learnings: LearningSink | None = None,
        leases: HeartbeatLeases | None = None,
    ) -> None:
        self.ledger = ledger
        self.conflicts = conflicts
        self.learnings = learnings
        self.leases = leases

    # --- registration ---

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
        item = await self.ledger.start(record, host=request.host)
        await self._beat(record.id)
        log.info("worker.registered worker=%s item=%s", record.id, item.id)
        return WorkerRegisterResponse(worker_id=record.id, lease_token=record.lease)

    async def _register_external(self, request: WorkerRegisterRequest) -> WorkerRegisterResponse:
        worker_id, token = uuid.uuid4(), new_worker_token()
        assignment = await self.ledger.claim(
            request.work_item_id,
            worker_id=worker_id,
            token_hash=hash_token(token),
            host=request.host,
            reason="claimed by a registering worker",
        )
        await self._beat(worker_id)
        log.info("worker.registered worker=%s item=%s external=true", worker_id, assignment.item.id)
        return WorkerRegisterResponse(
            worker_id=worker_id, lease_token=assignment.lease_token, token=token
        )

    async def authenticate(self, worker_id: str | UUID, token: str | None) -> WorkerRecord:
        """The worker named in the path, if the token is its own (404 unknown, 401 wrong)."""
        record = await self.ledger.worker(worker_id)
        if not token_matches(token, record.token_hash):
            raise AuthError("invalid worker token")
        return record

    # --- reports from a working worker ---

    async def heartbeat(self, record: WorkerRecord, beat: WorkerHeartbeatRequest) -> Worker:
        worker = await self.ledger.heartbeat(record, beat)
        await self.conflicts.renew(record.id)
        await self._beat(record.id)
        return worker

    async def record_iteration(self, record: WorkerRecord, report: IterationReport) -> bool:
        return await self.ledger.record_iteration(record, report)

    async def record_limit(self, record: WorkerRecord, report: LimitReport) -> WorkItem:
        return await self.ledger.record_limit(record, report)

    async def current_item(self, record: WorkerRecord, action: str) -> WorkItem:
        """The item this worker still holds the lease of; `ConflictError` otherwise."""
        return await self.ledger.held_item(record, action)

    async def complete(self, record: WorkerRecord, result: WorkerCompleteRequest) -> WorkItem:
        done = await self.ledger.complete(record, result)
        if self.learnings and result.new_learnings:
            try:
                await self.learnings.save_many(
                    done.repo, result.new_learnings, worker_id=record.id, work_item_id=done.id
                )
            except Exception:  # the item is done; losing a note must not fail the report
                log.exception("worker.learnings_not_saved worker=%s item=%s", record.id, done.id)
        return done

    async def fail(self, record: WorkerRecord, report: WorkerFailRequest) -> WorkItem:
        return await self.ledger.fail(record, report)

    async def stuck(self, record: WorkerRecord, report: WorkerStuckRequest) -> WorkItem:
        return await self.ledger.stuck(record, report)

    # --- administration ---

    async def kill(self, worker_id: str | UUID, *, reason: str) -> Worker:
        """Mark a worker dead, free its locks, and fail its item with the reason."""
        return await self.ledger.kill(worker_id, reason=reason)

    async def get(self, worker_id: str | UUID) -> Worker:
        return (await self.ledger.worker(worker_id)).worker

    async def list(self, *, include_finished: bool = False, limit: int = 200) -> list[Worker]:
        return await self.ledger.workers(include_finished=include_finished, limit=limit)

    async def stats(self) -> WorkerStats:
        counts = await self.ledger.worker_counts()
        return WorkerStats(
            active=counts.get("busy", 0) + counts.get("idle", 0), stuck=counts.get("stuck", 0)
        )

    async def _beat(self, worker_id: UUID) -> None:
        if self.leases is not None:
            await self.leases.beat(worker_id)

"""The work-item queue (`QueueManager`): what users and intake do with items.

Submit (idempotent per source item), read, cancel, retry, reprioritise; claims are
made by the scheduler through the lifecycle. Every change is a ledger transition:
priority-then-FIFO claims with ``FOR UPDATE SKIP LOCKED``, a fresh lease per claim,
and `ConflictError` (HTTP 409) saying what state an item is in when a transition
does not apply.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from ai_factory.core.models import (
    CreateWorkItemInput,
    Priority,
    QueueStats,
    Source,
    WorkItem,
    WorkItemEvent,
    WorkItemStatus,
)
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.submission import SubmissionRules


class QueueManager:
    def __init__(
        self,
        *,
        ledger: Ledger,
        default_max_attempts: int = 3,
        rules: SubmissionRules | None = None,
    ) -> None:
        self.ledger = ledger
        self.default_max_attempts = default_max_attempts
        self.rules = rules or SubmissionRules()

    async def add(self, data: CreateWorkItemInput) -> tuple[WorkItem, bool]:
        """Queue an item once the submission rules admit it; return ``(item, created)``
        (False: the source item's active one)."""
        admitted = await asyncio.to_thread(self.rules.admit, data)  # may run git
        return await self.ledger.submit(admitted, max_attempts=self.default_max_attempts)

    async def get(self, item_id: str | UUID) -> WorkItem:
        return await self.ledger.item(item_id)

    async def list(
        self,
        *,
        statuses: list[WorkItemStatus] | None = None,
        repo: str | None = None,
        source: Source | None = None,
        source_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkItem]:
        return await self.ledger.items(
            statuses=statuses, repo=self.rules.spelling(repo), source=source,
            source_id=source_id, limit=limit, offset=offset,
        )  # fmt: skip

    async def stats(self) -> QueueStats:
        counts = await self.ledger.item_counts()
        return QueueStats(
            queued=counts.get("queued", 0) + counts.get("assigned", 0),
            running=counts.get("running", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0) + counts.get("stuck", 0),
            by_status={s.value: counts.get(s.value, 0) for s in WorkItemStatus},
        )

    async def events(
        self, item_id: str | UUID, *, after: int = 0, limit: int = 1000
    ) -> list[WorkItemEvent]:
        return await self.ledger.events(item_id, after=after, limit=limit)

    async def cancel(self, item_id: str | UUID, *, reason: str = "cancelled by user") -> WorkItem:
        return await self.ledger.cancel(item_id, reason=reason)

    async def cancel_queued(
        self, *, source: Source, repo: str, source_id: str, reason: str
    ) -> WorkItem | None:
        """Cancel a source item's item only while nobody has claimed it."""
        return await self.ledger.cancel_queued(
            source=source, repo=self.rules.spelling(repo) or repo, source_id=source_id,
            reason=reason,
        )  # fmt: skip

    async def record_merge(self, item_id: str | UUID) -> WorkItem | None:
        """Its pull request was merged (intake saw it close merged)."""
        return await self.ledger.record_merge(item_id)

    async def retry(self, item_id: str | UUID, *, reason: str = "retried by user") -> WorkItem:
        return await self.ledger.retry(item_id, reason=reason)

    async def set_priority(self, item_id: str | UUID, priority: Priority) -> WorkItem:
        return await self.ledger.set_priority(item_id, priority)

"""The work-item queue (the reference's QueueManager), on PostgreSQL.

Claims use ``FOR UPDATE SKIP LOCKED`` in priority-then-FIFO order and hand out a
fresh lease token each time. Every transition names its source status, and the
lease token where a worker is involved; a transition that does not apply raises
`ConflictError` (HTTP 409) saying what state the item is in, never a silent no-op.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import ConflictError, NotFoundError
from ai_factory.core.models import (
    CreateWorkItemInput,
    Priority,
    QueueStats,
    Source,
    WorkAssignment,
    WorkItem,
    WorkItemEvent,
    WorkItemStatus,
)

log = logging.getLogger(__name__)

Q = load_queries("work_items")


def parse_id(value: str | UUID, what: str = "work item") -> UUID:
    """A UUID from user input; anything else is simply not found."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError(f"{what} {value!r} not found") from None


class QueueManager:
    def __init__(self, *, db: Database, default_max_attempts: int = 3) -> None:
        self.db = db
        self.default_max_attempts = default_max_attempts

    # --- submission and reads ---

    async def add(self, data: CreateWorkItemInput) -> tuple[WorkItem, bool]:
        """Queue an item; return ``(item, created)``.

        An item already active for the same (source, repo, source_id) is returned
        instead of a duplicate, with ``created`` False.
        """
        params = {
            "source": data.source.value,
            "source_id": data.source_id or f"api-{uuid.uuid4().hex[:12]}",
            "source_url": data.source_url,
            "repo": data.repo,
            "base_branch": data.base_branch,
            "spec": data.spec,
            "priority": data.priority.value,
            "max_attempts": data.max_attempts or self.default_max_attempts,
        }
        # The existing active item may finish between our insert and our read;
        # then the next insert succeeds. Two rounds always settle it.
        for _ in range(3):
            row = await self.db.fetch_one(Q["insert"], params)
            if row:
                item = WorkItem.model_validate(row)
                log.info("work.submitted id=%s repo=%s priority=%s", item.id, item.repo, item.priority)
                return item, True
            row = await self.db.fetch_one(Q["get_active_by_source"], params)
            if row:
                return WorkItem.model_validate(row), False
        raise ConflictError("the item for this source changed state repeatedly; try again")

    async def get(self, item_id: str | UUID) -> WorkItem:
        row = await self.db.fetch_one(Q["get"], {"id": parse_id(item_id)})
        if row is None:
            raise NotFoundError(f"work item {item_id} not found")
        return WorkItem.model_validate(row)

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
        rows = await self.db.fetch_all(
            Q["list"],
            {
                "statuses": [s.value for s in statuses] if statuses else None,
                "repo": repo,
                "source": source.value if source else None,
                "source_id": source_id,
                "limit": limit,
                "offset": offset,
            },
        )
        return [WorkItem.model_validate(r) for r in rows]

    async def stats(self) -> QueueStats:
        counts = {r["status"]: r["n"] for r in await self.db.fetch_all(Q["stats"])}
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
        item = await self.get(item_id)
        rows = await self.db.fetch_all(Q["events"], {"id": item.id, "after": after, "limit": limit})
        return [WorkItemEvent.model_validate(r) for r in rows]

    async def add_event(
        self, item_id: UUID, kind: str, reason: str, data: dict[str, Any] | None = None
    ) -> WorkItemEvent:
        row = await self.db.fetch_one(
            Q["add_event"], {"id": item_id, "kind": kind, "reason": reason, "data": Jsonb(data or {})}
        )
        assert row is not None
        return WorkItemEvent.model_validate(row)

    # --- claims ---

    async def claim_next(
        self, *, worker_id: UUID | None = None, reason: str = "claimed"
    ) -> WorkAssignment | None:
        """Claim the most urgent, oldest queued item; None when the queue is empty."""
        row = await self.db.fetch_one(Q["claim_next"], {"worker_id": worker_id, "reason": reason})
        if row is None:
            return None
        return self._assignment(row)

    async def has_claimable(self) -> bool:
        """Whether `claim_next` would find an item now (cheap: the claim index)."""
        row = await self.db.fetch_one(Q["has_claimable"])
        return bool(row and row["found"])

    async def claim(
        self, item_id: str | UUID, *, worker_id: UUID | None = None, reason: str = "claimed"
    ) -> WorkAssignment:
        """Claim one named queued item (a worker that registers itself for it)."""
        params = {"id": parse_id(item_id), "worker_id": worker_id, "reason": reason}
        row = await self._transition("claim", params, "claim")
        return self._assignment(row)

    # --- worker-driven transitions (fenced by the lease token) ---

    async def start(self, item_id: UUID, lease_token: UUID, *, reason: str = "worker registered") -> WorkItem:
        params = {"id": item_id, "lease_token": lease_token, "reason": reason}
        return WorkItem.model_validate(await self._transition("start", params, "start"))

    async def complete(
        self,
        item_id: UUID,
        lease_token: UUID,
        *,
        pr_url: str,
        iterations: int,
        tokens: int,
        cost_usd: float = 0.0,
        reason: str = "worker completed",
    ) -> WorkItem:
        params = {
            "id": item_id,
            "lease_token": lease_token,
            "pr_url": pr_url,
            "iterations": iterations,
            "tokens": tokens,
            "cost_usd": cost_usd,
            "reason": reason,
        }
        return WorkItem.model_validate(await self._transition("complete", params, "complete"))

    async def fail(
        self,
        item_id: UUID,
        lease_token: UUID,
        *,
        error: str,
        reason: str = "worker failed",
        iterations: int = 0,
        tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> WorkItem:
        params = {
            "id": item_id,
            "lease_token": lease_token,
            "error": error,
            "reason": reason,
            "iterations": iterations,
            "tokens": tokens,
            "cost_usd": cost_usd,
        }
        return WorkItem.model_validate(await self._transition("fail", params, "fail"))

    async def mark_stuck(
        self,
        item_id: UUID,
        lease_token: UUID,
        *,
        reason: str,
        iterations: int = 0,
        tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> WorkItem:
        params = {
            "id": item_id,
            "lease_token": lease_token,
            "error": reason,
            "reason": "worker stuck",
            "iterations": iterations,
            "tokens": tokens,
            "cost_usd": cost_usd,
        }
        return WorkItem.model_validate(await self._transition("mark_stuck", params, "mark stuck"))

    async def requeue(
        self,
        item_id: UUID,
        lease_token: UUID,
        *,
        reason: str,
        refund_attempt: bool = False,
        delay_s: float = 0.0,
    ) -> WorkItem:
        """Give a claimed item back: queued again, or failed once attempts are used up."""
        params = {
            "id": item_id,
            "lease_token": lease_token,
            "reason": reason,
            "refund": refund_attempt,
            "delay_s": delay_s,
        }
        return WorkItem.model_validate(await self._transition("requeue", params, "requeue"))

    # --- user-driven transitions ---

    async def cancel(self, item_id: str | UUID, *, reason: str = "cancelled by user") -> WorkItem:
        params = {"id": parse_id(item_id), "reason": reason}
        return WorkItem.model_validate(await self._transition("cancel", params, "cancel"))

    async def retry(self, item_id: str | UUID, *, reason: str = "retried by user") -> WorkItem:
        params = {"id": parse_id(item_id), "reason": reason}
        try:
            row = await self._transition("retry", params, "retry")
        except psycopg.errors.UniqueViolation:
            raise ConflictError(
                f"cannot retry work item {item_id}: another item for the same source is active"
            ) from None
        return WorkItem.model_validate(row)

    async def set_priority(self, item_id: str | UUID, priority: Priority) -> WorkItem:
        params = {"id": parse_id(item_id), "priority": priority.value}
        return WorkItem.model_validate(await self._transition("set_priority", params, "reprioritise"))

    # --- helpers ---

    async def _transition(self, query: str, params: dict[str, Any], action: str) -> dict[str, Any]:
        row = await self.db.fetch_one(Q[query], params)
        if row is not None:
            log.info("work.%s id=%s status=%s", query, row["id"], row["status"])
            return row
        current = await self.db.fetch_one(Q["get"], {"id": params["id"]})
        if current is None:
            raise NotFoundError(f"work item {params['id']} not found")
        if "lease_token" in params and current["lease_token"] != params["lease_token"]:
            raise ConflictError(
                f"cannot {action} work item {params['id']}: this lease is no longer current"
                f" (the item is {current['status']})"
            )
        raise ConflictError(f"cannot {action} work item {params['id']}: it is {current['status']}")

    @staticmethod
    def _assignment(row: dict[str, Any]) -> WorkAssignment:
        return WorkAssignment(item=WorkItem.model_validate(row), lease_token=row["lease_token"])

"""The dashboard's read models: what its pages list and chart, read with dashboard.sql.

Read only; every change a page makes goes through the queue, worker manager or
learnings store, like the API's. Titles are cut from the first lines of a spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.models import (
    Priority,
    Worker,
    WorkItem,
    WorkItemEvent,
    WorkItemStatus,
    spec_title,
)

Q = load_queries("dashboard")

RECENT_EVENTS = 30


def title_of(spec_head: str | None, fallback: str = "") -> str:
    """A spec's title (the rule of `WorkItem.title`), or `fallback`."""
    return spec_title(spec_head) or fallback


class EventRow(WorkItemEvent):
    """An item event with the item's repository and title, for timelines across items."""

    repo: str = ""
    title: str = ""


class WorkerRow(BaseModel):
    """A worker with its item's title and status, and how long ago it last beat."""

    worker: Worker
    heartbeat_age_s: float
    item_repo: str | None = None
    item_status: str | None = None
    item_title: str = ""

    @property
    def active(self) -> bool:
        return self.worker.live


class RepoCount(BaseModel):
    repo: str
    items: int = 0
    learnings: int = 0
    uses: int = 0


class Outcome(BaseModel):
    created_at: datetime
    status: str


class FinishedItem(BaseModel):
    id: UUID
    title: str
    status: str
    iterations: int
    tokens: int
    cost_usd: float
    duration_s: float | None = None
    finished_at: datetime


class Totals(BaseModel):
    completed: int = 0
    failed: int = 0
    stuck: int = 0
    completed_cost_usd: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    merged: int = 0  # the factory's pull requests seen merged
    merged_cost_usd: float = 0.0  # their items' and follow-ups' cost

    @property
    def success_rate(self) -> float | None:
        ended = self.completed + self.failed + self.stuck
        return self.completed / ended if ended else None


class StatusCounts(BaseModel):
    """How many items each status and each priority has (for filters and the overview)."""

    by_status: dict[str, int] = Field(default_factory=dict)
    by_priority: dict[str, int] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


class DashboardStore:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def recent_events(self, *, limit: int = RECENT_EVENTS) -> list[EventRow]:
        rows = await self.db.fetch_all(Q["recent_events"], {"limit": limit})
        return [EventRow.model_validate({**r, "title": title_of(r["spec_head"])}) for r in rows]

    async def items(
        self,
        *,
        statuses: list[WorkItemStatus] | None = None,
        priority: Priority | None = None,
        repo: str | None = None,
        limit: int = 200,
    ) -> list[WorkItem]:
        rows = await self.db.fetch_all(
            Q["items"],
            {
                "statuses": [s.value for s in statuses] if statuses else None,
                "priority": priority.value if priority else None,
                "repo": repo,
                "limit": limit,
            },
        )
        return [WorkItem.model_validate(r) for r in rows]

    async def counts(self) -> StatusCounts:
        counts = StatusCounts(by_status={s.value: 0 for s in WorkItemStatus})
        for row in await self.db.fetch_all(Q["counts"]):
            status, priority, n = row["status"], row["priority"], row["n"]
            counts.by_status[status] = counts.by_status.get(status, 0) + n
            counts.by_priority[priority] = counts.by_priority.get(priority, 0) + n
        return counts

    async def repos(self, *, limit: int = 50) -> list[RepoCount]:
        return [
            RepoCount.model_validate(r)
            for r in await self.db.fetch_all(Q["repos"], {"limit": limit})
        ]

    async def workers(self, *, include_finished: bool = False, limit: int = 100) -> list[WorkerRow]:
        rows = await self.db.fetch_all(Q["workers"], {"all": include_finished, "limit": limit})
        return [_worker_row(r) for r in rows]

    async def worker(self, worker_id: UUID) -> WorkerRow | None:
        row = await self.db.fetch_one(Q["worker"], {"id": worker_id})
        return _worker_row(row) if row else None

    async def item_workers(self, item_id: UUID) -> list[WorkerRow]:
        return [_worker_row(r) for r in await self.db.fetch_all(Q["item_workers"], {"id": item_id})]

    async def outcomes_since(self, since: datetime) -> list[Outcome]:
        rows = await self.db.fetch_all(Q["outcomes_since"], {"since": since})
        return [Outcome.model_validate(r) for r in rows]

    async def finished_items(self, *, limit: int = 30) -> list[FinishedItem]:
        rows = await self.db.fetch_all(Q["finished_items"], {"limit": limit})
        return [
            FinishedItem.model_validate({**r, "title": title_of(r["spec_head"], str(r["id"])[:8])})
            for r in rows
        ]

    async def totals(self) -> Totals:
        row = await self.db.fetch_one(Q["totals"])
        return Totals.model_validate(row or {})

    async def learning_repos(self, *, limit: int = 100) -> list[RepoCount]:
        rows = await self.db.fetch_all(Q["learning_repos"], {"limit": limit})
        return [RepoCount.model_validate(r) for r in rows]


def _worker_row(row: dict[str, Any]) -> WorkerRow:
    return WorkerRow(
        worker=Worker.model_validate(row),
        heartbeat_age_s=max(0.0, row["heartbeat_age_s"] or 0.0),
        item_repo=row["item_repo"],
        item_status=row["item_status"],
        item_title=title_of(row["spec_head"]),
    )

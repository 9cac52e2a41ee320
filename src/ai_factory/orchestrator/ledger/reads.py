"""The read side of the ledger: items, workers and what supervision looks at.

Whether a worker is live, an item active or held, and a lease current are SQL
functions (migration 007); the queries here select them, and Python reads the
answers (`Worker.live`, `WorkerState.holds_item`) rather than deciding again.
"""

from __future__ import annotations

from uuid import UUID

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import ConflictError, InvalidInputError, NotFoundError
from ai_factory.core.ids import id_range, parse_id
from ai_factory.core.models import (
    ChainLink,
    Source,
    Worker,
    WorkItem,
    WorkItemEvent,
    WorkItemStatus,
)
from ai_factory.orchestrator.ledger.records import Orphan, WorkerRecord, WorkerState

ITEMS = load_queries("work_items")
WORKERS = load_queries("workers")


class LedgerReads:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    # --- items ---

    async def item_id(self, item_id: str | UUID) -> UUID:
        """The item `item_id` names: a whole id, or a unique prefix of six or more hex digits."""
        return await self._resolve(ITEMS["ids_between"], item_id, "work item")

    async def worker_id(self, worker_id: str | UUID) -> UUID:
        return await self._resolve(WORKERS["ids_between"], worker_id, "worker")

    async def _resolve(self, query: str, value: str | UUID, what: str) -> UUID:
        try:
            return parse_id(value, what)
        except NotFoundError:
            low, high = id_range(str(value), what)
        rows = await self.db.fetch_all(query, {"low": low, "high": high})
        if not rows:
            raise NotFoundError(f"{what} {value!r} not found")
        if len(rows) > 1:
            raise InvalidInputError(
                f"{what} id {value!r} is ambiguous (it starts {len(rows)} ids); give more of it"
            )
        return rows[0]["id"]

    async def item(self, item_id: str | UUID) -> WorkItem:
        row = await self.db.fetch_one(ITEMS["get"], {"id": await self.item_id(item_id)})
        if row is None:
            raise NotFoundError(f"work item {item_id} not found")
        return WorkItem.model_validate(row)

    async def items(
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
            ITEMS["list"],
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

    async def chain(self, item: WorkItem) -> tuple[ChainLink | None, list[ChainLink]]:
        """The item `item` follows up (None for new work), and the follow-ups of that pull
        request (of `item`'s own, for new work), oldest first."""
        root = item.parent_id or item.id
        rows = await self.db.fetch_all(ITEMS["chain"], {"parent": root})
        parent = next((ChainLink.model_validate(r) for r in rows if r["id"] == root), None)
        follow_ups = [ChainLink.model_validate(r) for r in rows if r["parent_id"] == root]
        return (parent if item.parent_id else None), follow_ups

    async def item_counts(self) -> dict[str, int]:
        """Items per status."""
        return {r["status"]: r["n"] for r in await self.db.fetch_all(ITEMS["stats"])}

    async def events(
        self, item_id: str | UUID, *, after: int = 0, limit: int = 1000
    ) -> list[WorkItemEvent]:
        item = await self.item(item_id)
        rows = await self.db.fetch_all(ITEMS["events"], {"id": item.id, "after": after, "limit": limit})
        return [WorkItemEvent.model_validate(r) for r in rows]

    async def has_claimable(self) -> bool:
        """Whether a claim would find an item now (cheap: the claim index)."""
        row = await self.db.fetch_one(ITEMS["has_claimable"])
        return bool(row and row["found"])

    # --- workers ---

    async def worker(self, worker_id: str | UUID) -> WorkerRecord:
        row = await self.db.fetch_one(WORKERS["get"], {"id": await self.worker_id(worker_id)})
        if row is None:
            raise NotFoundError(f"worker {worker_id} not found")
        return WorkerRecord.from_row(row)

    async def workers(self, *, include_finished: bool = False, limit: int = 200) -> list[Worker]:
        rows = await self.db.fetch_all(WORKERS["list"], {"all": include_finished, "limit": limit})
        return [Worker.model_validate(r) for r in rows]

    async def worker_counts(self) -> dict[str, int]:
        """Live workers per status."""
        return {r["status"]: r["n"] for r in await self.db.fetch_all(WORKERS["stats"])}

    async def held_item(self, record: WorkerRecord, action: str) -> WorkItem:
        """The item this worker still holds the lease of; `ConflictError` saying why not.

        A worker that was finished (killed, timed out) or whose item moved on (cancelled,
        requeued, claimed by another worker) may no longer act on it: no locks, no
        iteration or limit reports, no result.
        """
        row = await self.db.fetch_one(WORKERS["held_item"], {"id": record.id})
        if row is not None:
            return WorkItem.model_validate(row)
        raise await self._not_held(record, action)

    async def _not_held(self, record: WorkerRecord, action: str) -> ConflictError:
        if record.worker.work_item_id is None:
            return ConflictError(f"worker {record.id} has no work item to {action}")
        item = await self.item(record.worker.work_item_id)
        # A cancel finishes the worker too; the cancel is what the worker should hear about.
        if not record.worker.live and item.status is not WorkItemStatus.CANCELLED:
            return ConflictError(f"cannot {action}: worker {record.id} is {record.worker.status}")
        return ConflictError(
            f"cannot {action}: work item {item.id} is {item.status} and this worker's lease"
            " is no longer current"
        )

    # --- supervision ---

    async def live_workers(self) -> list[WorkerState]:
        """Every live worker, oldest first."""
        return [WorkerState.from_row(r) for r in await self.db.fetch_all(WORKERS["live_states"])]

    async def worker_state(self, worker_id: UUID) -> WorkerState | None:
        row = await self.db.fetch_one(WORKERS["state"], {"id": worker_id})
        return WorkerState.from_row(row) if row else None

    async def orphaned_items(self, *, grace_s: float) -> list[Orphan]:
        """Items claimed longer than `grace_s` ago that no live worker holds."""
        rows = await self.db.fetch_all(WORKERS["orphaned_items"], {"grace_s": grace_s})
        return [Orphan(id=r["id"], lease_token=r["lease_token"]) for r in rows]

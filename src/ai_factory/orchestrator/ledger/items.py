"""The ledger's item actions: what users and intake do to work items.

Submit (idempotent per source item), cancel (the worker holding the item is finished in
the same transaction), cancel a source item's unclaimed item, retry, reprioritise; and
what every transition shares: `_transition`, the fenced update that says why a
transition does not apply (`ConflictError`, HTTP 409) instead of doing nothing, and the
release of a finished worker's file locks.
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
from ai_factory.core.errors import ConflictError, NotFoundError, StoreError
from ai_factory.core.models import CreateWorkItemInput, Priority, Source, WorkItem
from ai_factory.orchestrator.conflicts import ConflictDetector
from ai_factory.orchestrator.ledger.reads import ITEMS, LedgerReads

log = logging.getLogger(__name__)

Q = load_queries("ledger")


class ItemActions(LedgerReads):
    def __init__(self, *, db: Database, conflicts: ConflictDetector) -> None:
        super().__init__(db=db)
        self.conflicts = conflicts


    async def submit(self, data: CreateWorkItemInput, *, max_attempts: int) -> tuple[WorkItem, bool]:
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
            "max_attempts": data.max_attempts or max_attempts,
            "kind": data.kind.value,
            "parent_id": data.parent_id,
            "branch": data.branch,
            "pr_number": data.pr_number,
            "context": Jsonb(data.context),
        }
        # The active item may settle between our insert and our read; the next insert
        # then succeeds. Three rounds settle any realistic race.
        for _ in range(3):
            row = await self.db.fetch_one(Q["submit"], params)
            if row:
                item = WorkItem.model_validate(row)
                log.info("work.submitted id=%s repo=%s priority=%s", item.id, item.repo, item.priority)
                return item, True
            row = await self.db.fetch_one(ITEMS["get_active_by_source"], params)
            if row:
                return WorkItem.model_validate(row), False
        raise ConflictError("the item for this source changed state repeatedly; try again")

    async def cancel(self, item_id: str | UUID, *, reason: str) -> WorkItem:
        """Cancel an unsettled item; the worker holding it is finished and its locks freed."""
        params = {"id": await self.item_id(item_id), "reason": reason}
        async with self.db.transaction():
            row = await self._transition("cancel", params, "cancel")
            holders = []
            if row["old_lease"] is not None:
                holders = [r["id"] for r in await self.db.fetch_all(
                    Q["finish_holders"], {"id": row["id"], "lease": row["old_lease"]})]
            await self._release_in_transaction(holders)
        await self._release_after(holders)
        return WorkItem.model_validate(row)

    async def cancel_queued(
        self, *, source: Source, repo: str, source_id: str, reason: str
    ) -> WorkItem | None:
        """Cancel a source item's item if nobody has claimed it; None when there is none."""
        row = await self.db.fetch_one(
            Q["cancel_queued"],
            {"source": source.value, "repo": repo, "source_id": source_id, "reason": reason},
        )
        if row is None:
            return None
        log.info("work.cancelled id=%s repo=%s source_id=%s reason=%s", row["id"], repo, source_id,
                 reason)  # fmt: skip
        return WorkItem.model_validate(row)

    async def retry(self, item_id: str | UUID, *, reason: str) -> WorkItem:
        params = {"id": await self.item_id(item_id), "reason": reason}
        try:
            row = await self._transition("retry", params, "retry")
        except psycopg.errors.UniqueViolation:
            raise ConflictError(
                f"cannot retry work item {item_id}: another item for the same source is active"
            ) from None
        return WorkItem.model_validate(row)

    async def set_priority(self, item_id: str | UUID, priority: Priority) -> WorkItem:
        params = {"id": await self.item_id(item_id), "priority": priority.value}
        return WorkItem.model_validate(await self._transition("set_priority", params, "reprioritise"))

    async def record_merge(self, item_id: str | UUID) -> WorkItem | None:
        """The item's pull request was merged; None when the item has no delivered PR."""
        row = await self.db.fetch_one(Q["record_merge"], {"id": await self.item_id(item_id)})
        return WorkItem.model_validate(row) if row else None

    # --- shared by every transition ---

    async def _release_in_transaction(self, worker_ids: list[UUID]) -> None:
        """Locks kept in this database are freed in the transition's own transaction."""
        if self.conflicts.in_database:
            for worker_id in worker_ids:
                await self.conflicts.release_all(worker_id)

    async def _release_after(self, worker_ids: list[UUID]) -> None:
        """Locks kept elsewhere (Redis) are freed once the transition committed; best effort:
        a lock left behind expires with its TTL."""
        if self.conflicts.in_database:
            return
        for worker_id in worker_ids:
            try:
                await self.conflicts.release_all(worker_id)
            except StoreError as exc:
                log.warning("worker.locks_not_released worker=%s error=%s", worker_id, exc)

    async def _transition(self, query: str, params: dict[str, Any], action: str) -> dict[str, Any]:
        row = await self.db.fetch_one(Q[query], params)
        if row is not None:
            log.info("work.%s id=%s status=%s", query, row["id"], row["status"])
            return row
        current = await self.db.fetch_one(ITEMS["get"], {"id": params["id"]})
        if current is None:
            raise NotFoundError(f"work item {params['id']} not found")
        if "lease_token" in params and current["lease_token"] != params["lease_token"]:
            raise ConflictError(
                f"cannot {action} work item {params['id']}: this lease is no longer current"
                f" (the item is {current['status']})"
            )
        raise ConflictError(f"cannot {action} work item {params['id']}: it is {current['status']}")

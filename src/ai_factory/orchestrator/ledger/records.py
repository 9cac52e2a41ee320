"""The typed rows the ledger hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ai_factory.core.models import Worker, WorkerStatus, WorkItemStatus
from ai_factory.orchestrator.spawners.base import WorkerHandle


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker row as the orchestrator sees it, secrets included."""

    worker: Worker
    lease_token: UUID | None
    token_hash: str

    @property
    def id(self) -> UUID:
        return self.worker.id

    @property
    def lease(self) -> UUID:
        """The lease of the item it was given (every worker row has one)."""
        assert self.lease_token is not None
        return self.lease_token

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerRecord:
        return cls(Worker.model_validate(row), row["lease_token"], row["token_hash"])


@dataclass(frozen=True, slots=True)
class WorkerState:
    """A worker as supervision sees it: its handle, its silence, its item's state."""

    id: UUID
    work_item_id: UUID | None
    status: WorkerStatus
    live: bool  # worker_is_live() in SQL
    holds_item: bool  # its item is still claimed under its lease (lease_is_current())
    item_status: WorkItemStatus | None
    silent_s: float
    age_s: float
    exit_code: int | None
    handle: WorkerHandle

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerState:
        return cls(
            id=row["id"],
            work_item_id=row["work_item_id"],
            status=WorkerStatus(row["status"]),
            live=row["live"],
            holds_item=row["holds_item"],
            item_status=WorkItemStatus(row["item_status"]) if row["item_status"] else None,
            silent_s=row["silent_s"],
            age_s=row["age_s"],
            exit_code=row["exit_code"],
            handle=WorkerHandle(
                worker_id=row["id"],
                spawner=row["spawner"],
                work_item_id=row["work_item_id"],
                pid=row["pid"],
                pid_start=row["pid_start"],
                spawn_host=row["spawn_host"],
                container_id=row["container_id"],
            ),
        )


@dataclass(frozen=True, slots=True)
class Orphan:
    """A claimed item that no live worker holds."""

    id: UUID
    lease_token: UUID

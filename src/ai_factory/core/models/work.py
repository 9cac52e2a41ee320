"""Work items: what the queue holds, how they are submitted, and their audit events."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from ai_factory.core.models.base import WireModel


class WorkItemStatus(StrEnum):
    QUEUED = "queued"  # in queue, waiting
    ASSIGNED = "assigned"  # claimed, a worker is starting
    RUNNING = "running"  # a worker registered and is processing
    STUCK = "stuck"  # the worker reported stuck
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = frozenset(
    {WorkItemStatus.QUEUED, WorkItemStatus.ASSIGNED, WorkItemStatus.RUNNING, WorkItemStatus.STUCK}
)
# No worker works on the item any more: a result to report or wait for (stuck is in both
# sets: it holds its source's slot until someone retries or cancels it).
SETTLED_STATUSES = frozenset(
    {
        WorkItemStatus.COMPLETED,
        WorkItemStatus.FAILED,
        WorkItemStatus.STUCK,
        WorkItemStatus.CANCELLED,
    }
)


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Source(StrEnum):
    GITHUB = "github"
    API = "api"


# git check-ref-format rules, plus: no leading "-" so a branch can never be an option.
_BAD_REF = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20\x7f~^:?*\[\\])|(@\{)|(/\.)|(//)|([/.]$)|(\.lock$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_branch(value: str) -> str:
    if _BAD_REF.search(value) or value == "@":
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


def _check_repo(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    return value


BranchName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_check_branch)
]
RepoRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    AfterValidator(_check_repo),
]
MAX_SPEC_CHARS = 1_000_000  # characters (code points), however the body encodes them
SpecText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SPEC_CHARS)]


def spec_title(spec: str | None, limit: int = 200) -> str:
    """A spec's first heading, or its first non-empty line; "" for an empty spec."""
    for line in (spec or "").splitlines():
        text = line.strip().lstrip("#").strip()
        if text:
            return text[:limit]
    return ""


class WorkKind(StrEnum):
    """What an item is: new work, or a follow-up on the pull request of its parent."""

    WORK = "work"  # an issue or a spec: a new branch and a new pull request
    REVIEW = "review"  # review feedback on the parent's pull request
    CI_FIX = "ci_fix"  # a failing check on the parent's pull request
    CONFLICT = "conflict"  # the parent's pull request no longer merges: merge the base in


class CreateWorkItemInput(WireModel):
    """POST /api/work. Without sourceId (a plain API or CLI submission) one is generated."""

    source: Source = Source.API
    source_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    source_url: Annotated[str, StringConstraints(max_length=2048)] = ""
    repo: RepoRef
    base_branch: BranchName = "main"
    spec: SpecText
    priority: Priority = Priority.MEDIUM
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    # Follow-ups only: the item whose pull request this continues, on its branch.
    kind: WorkKind = WorkKind.WORK
    parent_id: UUID | None = None
    branch: BranchName | None = None
    pr_number: int | None = Field(default=None, ge=1, le=2**31 - 1)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _followup_fields(self) -> CreateWorkItemInput:
        if self.kind is not WorkKind.WORK and (self.parent_id is None or self.branch is None):
            raise ValueError(f"a {self.kind} follow-up needs parentId and branch")
        return self


class WorkItem(WireModel):
    id: UUID
    source: Source
    source_id: str
    source_url: str
    repo: str
    base_branch: str
    spec: str
    priority: Priority
    status: WorkItemStatus
    status_reason: str | None = None
    worker_id: UUID | None = None
    pr_url: str | None = None
    error: str | None = None
    attempts: int = 0
    max_attempts: int = 3
    iterations: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    kind: WorkKind = WorkKind.WORK
    parent_id: UUID | None = None
    branch: str | None = None
    pr_number: int | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    pr_merged_at: datetime | None = None

    @property
    def is_followup(self) -> bool:
        return self.kind is not WorkKind.WORK

    @property
    def title(self) -> str:
        """The spec's first heading (or first line), for lists and PR titles."""
        return spec_title(self.spec) or str(self.id)


class WorkAssignment(WireModel):
    """A claimed item together with the lease that fences every later transition."""

    item: WorkItem
    lease_token: UUID


class PriorityUpdate(WireModel):
    priority: Priority


class WorkItemEvent(WireModel):
    id: int
    work_item_id: UUID
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ChainLink(WireModel):
    """One item of an issue's chain: the item, its pull request, its follow-ups."""

    id: UUID
    kind: WorkKind
    status: WorkItemStatus
    pr_url: str | None = None
    created_at: datetime


class WorkItemDetail(WorkItem):
    """An item with its audit trail (GET /api/work/{id}?events=true, `factory show`) and its
    chain: the item it follows up (`parent`) and the follow-ups of its pull request."""

    events: list[WorkItemEvent] = Field(default_factory=list)
    parent: ChainLink | None = None
    follow_ups: list[ChainLink] = Field(default_factory=list)


class QueueStats(WireModel):
    """Queue counts for /api/status: `queued` includes assigned items and `failed` stuck
    ones (docs/design.md#names-kept-from-the-original-specification); `by_status` has the
    exact split."""

    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)

"""Workers and the worker → orchestrator request/response contracts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from ai_factory.core.models.base import WireModel

# What the database columns hold: INT counts, BIGINT token totals, NUMERIC(14, 6) dollars.
MAX_COUNT = 2**31 - 1
MAX_TOKENS = 2**63 - 1
MAX_COST_USD = 99_999_999.0


class WorkerStatus(StrEnum):
    IDLE = "idle"  # registered, not yet working
    BUSY = "busy"  # processing a work item
    STUCK = "stuck"  # reported stuck
    DEAD = "dead"  # killed or failed its health check
    DONE = "done"  # finished and exited


class WorkerPhase(StrEnum):
    SETUP = "setup"
    RUNNING = "running"
    GATE = "gate"
    COMMITTING = "committing"
    DELIVERING = "delivering"
    LIMITED = "limited"
    STUCK = "stuck"


class Worker(WireModel):
    id: UUID
    container_id: str
    work_item_id: UUID | None = None
    status: WorkerStatus
    phase: WorkerPhase | None = None
    current_iteration: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    spawner: str = "external"
    host: str = ""
    last_heartbeat: datetime
    created_at: datetime
    finished_at: datetime | None = None
    live: bool = Field(
        description="May still act: idle, busy or stuck and not finished (worker_is_live in SQL)."
    )


RepoPath = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class WorkerRegisterRequest(WireModel):
    work_item_id: UUID
    worker_id: UUID | None = None
    host: str = ""


class WorkerRegisterResponse(WireModel):
    worker_id: UUID
    lease_token: UUID
    token: str | None = Field(
        default=None, description="Issued only when the worker registered itself (no spawn token)."
    )


class WorkerHeartbeatRequest(WireModel):
    iteration: int = Field(ge=0, le=MAX_COUNT)
    tokens: int = Field(ge=0, le=MAX_TOKENS, description="Tokens this worker used so far.")
    phase: WorkerPhase
    cost_usd: float = Field(default=0.0, ge=0, le=MAX_COST_USD)
    message: str | None = Field(default=None, max_length=2000)


class WorkerLockRequest(WireModel):
    files: list[RepoPath] = Field(min_length=1, max_length=1000)


class LockResult(WireModel):
    acquired: list[str]
    conflicts: list[str]


class WorkerCompleteRequest(WireModel):
    pr_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    iterations: int = Field(ge=0, le=MAX_COUNT)
    tokens: int = Field(ge=0, le=MAX_TOKENS)
    files_changed: list[str] = Field(default_factory=list)
    new_learnings: list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]] = Field(
        default_factory=list
    )
    cost_usd: float = Field(default=0.0, ge=0, le=MAX_COST_USD)


class WorkerFailRequest(WireModel):
    error: Annotated[str, StringConstraints(min_length=1, max_length=20000)]
    iteration: int = Field(default=0, ge=0, le=MAX_COUNT)


class WorkerStuckRequest(WireModel):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=20000)]
    attempts: int = Field(default=0, ge=0, le=MAX_COUNT)


class WorkerStats(WireModel):
    active: int = 0
    stuck: int = 0


class IterationOutcome(StrEnum):
    PROGRESS = "progress"  # a new commit or a newly checked box
    NO_PROGRESS = "no_progress"
    GATE_FAILED = "gate_failed"
    ERROR = "error"


class IterationReport(WireModel):
    """POST /api/worker/{id}/iteration: one finished agent iteration (counts toward budgets)."""

    iteration: int = Field(ge=1, le=MAX_COUNT)
    input_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    output_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    cache_read_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    cache_creation_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    cost_usd: float = Field(default=0.0, ge=0, le=MAX_COST_USD)
    duration_ms: int = Field(default=0, ge=0, le=MAX_TOKENS)
    num_turns: int = Field(default=0, ge=0, le=MAX_COUNT)
    session_id: str | None = Field(default=None, max_length=200)
    outcome: IterationOutcome = IterationOutcome.PROGRESS
    files_edited: list[str] = Field(default_factory=list, max_length=10000)
    tasks_done: int = Field(default=0, ge=0, le=MAX_COUNT)
    tasks_total: int = Field(default=0, ge=0, le=MAX_COUNT)
    # The checked SPEC.md tasks, so a dashboard can tick them for workers on other hosts.
    done_tasks: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=list, max_length=1000
    )
    message: str | None = Field(default=None, max_length=20000)


class LimitStatus(StrEnum):
    ALLOWED_WARNING = "allowed_warning"  # close to a limit: show utilization
    REJECTED = "rejected"  # the subscription said no until resets_at


class LimitReport(WireModel):
    """POST /api/worker/{id}/limited: the agent hit (or neared) a subscription limit."""

    status: LimitStatus
    resets_at: datetime | None = None
    rate_limit_type: str | None = Field(default=None, max_length=100)
    utilization: float | None = Field(default=None, ge=0)
    message: str | None = Field(default=None, max_length=2000)


class FactoryPause(WireModel):
    """GET /api/worker/{id}/pause: the factory-wide pause a rejected usage limit started.

    ``paused_until`` is None when nothing is paused; a worker sends no request to Claude
    before then (it waits, then runs the same iteration). ``single_file_worker``: a window
    is close to its limit (Claude said ``allowed_warning``), so only this worker sends
    requests until the window resets or is refused; the others wait their turn."""

    paused_until: datetime | None = None
    rate_limit_type: str | None = None
    reason: str | None = None
    single_file_worker: UUID | None = None

"""What one agent run (an iteration) produced, as the worker judges it.

Owns: `IterationResult`, the typed record every agent driver fills in from its
stream (the Claude driver from the SDK's messages, the command driver from
output lines), and `RateLimitSignal`, one ``rate_limit_event`` of the CLI.
The limits decision (`ai_factory.worker.run_outcome`) and the loop read only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StopReason(StrEnum):
    FINISHED = "finished"  # the agent ended by itself (successfully or not)
    IDLE_TIMEOUT = "idle_timeout"  # no stream event for ITERATION_IDLE_TIMEOUT_SECONDS seconds
    WALL_TIMEOUT = "wall_timeout"  # ran longer than ITERATION_TIMEOUT_SECONDS seconds
    LIMITED = "limited"  # stopped by the worker: the subscription said no (rejected)
    CANCELLED = "cancelled"  # stopped by the worker: lease lost or shutting down


@dataclass(frozen=True)
class RateLimitSignal:
    """One ``rate_limit_event``: the subscription window's state (OAuth logins only)."""

    status: str  # allowed | allowed_warning | rejected
    resets_at: int | None = None  # epoch seconds
    rate_limit_type: str | None = None  # five_hour | seven_day | ...
    utilization: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def from_factory(self) -> bool:
        """The factory's pause (another worker's limit), not an event of this session."""
        return self.raw.get("source") == "factory"

    @property
    def waiting_turn(self) -> bool:
        """The factory is near a limit and another worker has the turn (not a refusal)."""
        return self.from_factory and bool(self.raw.get("turn"))

    @property
    def window_utilization(self) -> float | None:
        """Utilization of this event's window, from the typed field or the raw windows."""
        if self.utilization is not None:
            return self.utilization
        windows = self.raw.get("unifiedWindows") or {}
        window = windows.get(self.rate_limit_type or "") if isinstance(windows, dict) else None
        value = window.get("utilization") if isinstance(window, dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def window_resets_at(self) -> int | None:
        """The reset time of the rejected window: the event's own, else its raw window's."""
        if self.resets_at is not None:
            return self.resets_at
        windows = self.raw.get("unifiedWindows") or {}
        window = windows.get(self.rate_limit_type or "") if isinstance(windows, dict) else None
        value = window.get("resetsAt") if isinstance(window, dict) else None
        return int(value) if isinstance(value, (int, float)) else None


@dataclass
class IterationResult:
    """Everything the worker keeps from one agent run."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float = 0.0
    num_turns: int = 0
    duration_ms: int = 0
    session_id: str | None = None
    files_edited: list[str] = field(default_factory=list)
    tool_calls: int = 0
    denied_edits: list[str] = field(default_factory=list)  # repo paths a lock denied

    # how it ended
    stop: StopReason = StopReason.FINISHED
    got_result: bool = False  # a final result message (or exit code) arrived
    is_error: bool = False
    subtype: str | None = None
    result_text: str | None = None
    api_error_status: int | None = None
    api_error: str | None = None  # raw extra, e.g. "usage_limit_reached"
    api_error_type: str | None = None  # raw extra, e.g. "rate_limit_error"
    terminal_reason: str | None = None
    assistant_errors: list[str] = field(default_factory=list)  # rate_limit, server_error ...
    process_error: str | None = None  # the CLI or command died without a usable result
    exit_code: int | None = None
    output_tail: str = ""  # last lines of stderr (claude) or output (command)
    rate_limits: list[RateLimitSignal] = field(default_factory=list)
    api_retries: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens (cache reads and writes are reported separately)."""
        return self.input_tokens + self.output_tokens

    @property
    def rejected(self) -> RateLimitSignal | None:
        return next((s for s in reversed(self.rate_limits) if s.status == "rejected"), None)

    @property
    def warning(self) -> RateLimitSignal | None:
        return next((s for s in reversed(self.rate_limits) if s.status == "allowed_warning"), None)

    @property
    def failed(self) -> bool:
        """The run ended in an error the limits decision has to look at."""
        return (
            self.is_error
            or self.process_error is not None
            or bool(self.exit_code and self.stop is StopReason.FINISHED)
        )

    def add_usage(self, other: IterationResult) -> None:
        """Fold the usage of an attempt that did not count (limited, retried) into this one."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_creation_tokens += other.cache_creation_tokens
        self.cost_usd += other.cost_usd
        self.duration_ms += other.duration_ms

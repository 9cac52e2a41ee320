"""Scenarios: how the simulated model and its API behave, and the state they need.

Owns: the `Scenario` settings (a name plus parameters), the `Gatekeeper` that
decides per request whether the API answers normally or with an HTTP error
(429 usage limit, 529 overloaded, 401), and the rate-limit headers it sends.

Names and parameters:

- ``normal``: the agent does the first unchecked SPEC.md task (see `agent`).
- ``stuck``: reads SPEC.md, says it is still thinking, ends the turn; no edits,
  no commits.
- ``stuck_file``: reads SPEC.md, writes ``.ai/stuck.md`` saying why, ends the turn.
- ``gate``: a ``Create`` task's first implementation starts with a ``BUG`` line
  (a NameError in Python, a hit for ``grep BUG``); when the prompt contains
  "Quality gate failed" the agent writes the correct content and commits
  ``fix: <task>`` (which task it repairs: see `agent`).
- ``usage_limit``: ``limit_after`` main-agent requests are served, then every
  /v1/messages call gets HTTP 429 ``rate_limit_error`` with the subscription's
  ``anthropic-ratelimit-unified-*`` headers (status ``rejected``, claim
  ``five_hour``) until ``reset_after_s`` seconds after the first rejection;
  from then on it serves normally. Allowed responses carry ``allowed`` (or,
  from ``warn_utilization`` up, a surpassed-threshold warning) headers.
- ``windows``: a subscription's usage windows, one after another. A window opens
  with the first /v1/messages request after the previous one closed and lasts
  ``window_s`` seconds; it serves ``window_requests`` main-agent requests, then
  answers every request with the usage limit's 429 (as ``usage_limit``) until it
  closes. `Gatekeeper.windows` keeps one `WindowRecord` per window: what it
  served, when it first refused, and how many requests arrived after that refusal.
- ``overloaded``: the first ``overloaded_count`` main-agent requests get HTTP
  529 ``overloaded_error``, then normal.
- ``slow``: each main-agent response pauses ``delay_s`` seconds, after
  ``message_start`` (``delay_phase="mid_stream"``) or before the status line
  and headers (``"before_headers"``).
- ``auth_error``: every /v1/messages call gets HTTP 401 ``authentication_error``.

Any scenario can also ``hold_before`` a step of the agent: ``"commit"`` (the Bash
call that runs ``git commit``) or ``"check"`` (the Edit that checks a box in
SPEC.md). The first reply that carries that step waits ``hold_s`` seconds before
it is sent (`SimServer.held` is set meanwhile), so that a test can kill the
worker between a file's write and its commit, or between a commit and its box.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ai_factory.sim import wire

USAGE_LIMIT_MESSAGE = "This request would exceed your account's rate limit. Please try again later."


DelayPhase = Literal["mid_stream", "before_headers"]
HoldPoint = Literal["commit", "check"]


class ScenarioName(StrEnum):
    NORMAL = "normal"
    STUCK = "stuck"
    STUCK_FILE = "stuck_file"
    GATE = "gate"
    USAGE_LIMIT = "usage_limit"
    WINDOWS = "windows"
    OVERLOADED = "overloaded"
    SLOW = "slow"
    AUTH_ERROR = "auth_error"


class Scenario(BaseModel):
    """A scenario and its parameters; also the body of ``POST /_sim/scenario``."""

    model_config = ConfigDict(extra="forbid")

    name: ScenarioName = ScenarioName.NORMAL
    limit_after: int = Field(default=0, ge=0, description="usage_limit: main requests served first")
    reset_after_s: float = Field(default=60.0, ge=0, description="usage_limit: seconds until reset")
    warn_utilization: float = Field(
        default=0.8, ge=0, le=1, description="usage_limit: utilization that adds a warning"
    )
    window_requests: int = Field(
        default=100, ge=0, description="windows: main requests each window serves"
    )
    window_s: float = Field(default=60.0, gt=0, description="windows: a window's length (s)")
    overloaded_count: int = Field(default=1, ge=0, description="overloaded: 529s before success")
    delay_s: float = Field(default=5.0, ge=0, description="slow: pause per main request")
    delay_phase: DelayPhase = Field(default="mid_stream", description="slow: where to pause")
    hold_before: HoldPoint | None = Field(
        default=None, description="hold the first reply that commits, or checks a box"
    )
    hold_s: float = Field(default=3600.0, ge=0, description="how long that reply is held")


@dataclass(frozen=True)
class Verdict:
    """How to answer one request: normally (status 200) or with an error body."""

    status: int = 200
    error: dict[str, object] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    delay_phase: DelayPhase = "mid_stream"


@dataclass
class WindowRecord:
    """One usage window of the ``windows`` scenario (epoch seconds)."""

    opened_at: float
    closes_at: float
    served: int = 0  # main-agent requests answered normally
    refused: int = 0  # requests answered 429
    first_refused_at: float | None = None
    after_refusal: int = 0  # requests that arrived after the first refusal, before the close
    late_s: list[float] = field(default_factory=list)  # how long after the first refusal each came


class Gatekeeper:
    """Counts requests for the current scenario and decides each HTTP outcome.

    Thread-safe: tests switch scenarios from their own thread while the server
    answers in its event loop.
    """

    def __init__(self, scenario: Scenario, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._now = clock
        self._scenario = scenario
        self._served_main = 0
        self._overloaded_sent = 0
        self._reset_at: float | None = None
        self._windows: list[WindowRecord] = []

    @property
    def windows(self) -> list[WindowRecord]:
        """The ``windows`` scenario's windows so far, oldest first (copies)."""
        with self._lock:
            return [WindowRecord(**{**vars(w), "late_s": list(w.late_s)}) for w in self._windows]

    @property
    def scenario(self) -> Scenario:
        with self._lock:
            return self._scenario

    def switch(self, scenario: Scenario) -> None:
        """Use `scenario` from the next request on, with fresh counters."""
        with self._lock:
            self._scenario = scenario
            self._served_main = 0
            self._overloaded_sent = 0
            self._reset_at = None
            self._windows = []

    def admit(self, *, main: bool) -> Verdict:
        """The verdict for one /v1/messages request (`main`: the agent loop)."""
        with self._lock:
            s = self._scenario
            match s.name:
                case ScenarioName.AUTH_ERROR:
                    return Verdict(
                        401,
                        wire.error_json("authentication_error", "invalid x-api-key"),
                        {"x-should-retry": "false"},
                    )
                case ScenarioName.OVERLOADED if main and self._overloaded_sent < s.overloaded_count:
                    self._overloaded_sent += 1
                    return Verdict(529, wire.error_json("overloaded_error", "Overloaded"))
                case ScenarioName.USAGE_LIMIT:
                    return self._usage_limit(s, main=main)
                case ScenarioName.WINDOWS:
                    return self._window(s, main=main)
                case ScenarioName.SLOW if main:
                    return Verdict(delay_s=s.delay_s, delay_phase=s.delay_phase)
            return Verdict()

    def _usage_limit(self, s: Scenario, *, main: bool) -> Verdict:
        now = self._now()
        if self._reset_at is not None and now >= self._reset_at:
            return Verdict()  # the window has reset: serve normally from now on
        if self._reset_at is None and main and self._served_main >= s.limit_after:
            self._reset_at = now + s.reset_after_s
        if self._reset_at is not None:
            reset = math.ceil(self._reset_at)
            headers = _unified_headers("rejected", utilization=1.0, reset=reset)
            headers["retry-after"] = str(max(1, math.ceil(self._reset_at - now)))
            return Verdict(429, wire.error_json("rate_limit_error", USAGE_LIMIT_MESSAGE), headers)
        if main:
            self._served_main += 1
        used = self._served_main / max(1, s.limit_after + 1)
        reset = math.ceil(now + s.reset_after_s)
        status = "allowed_warning" if used >= s.warn_utilization else "allowed"
        headers = _unified_headers(status, utilization=used, reset=reset)
        if status == "allowed_warning":
            headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = str(s.warn_utilization)
        return Verdict(headers=headers)


    def _window(self, s: Scenario, *, main: bool) -> Verdict:
        now = self._now()
        window = self._windows[-1] if self._windows else None
        if window is None or now >= window.closes_at:
            window = WindowRecord(opened_at=now, closes_at=now + s.window_s)
            self._windows.append(window)
        reset = math.ceil(window.closes_at)
        if window.served >= s.window_requests:
            if window.first_refused_at is None:
                window.first_refused_at = now
            else:
                window.after_refusal += 1
                window.late_s.append(now - window.first_refused_at)
            window.refused += 1
            headers = _unified_headers("rejected", utilization=1.0, reset=reset)
            headers["retry-after"] = str(max(1, math.ceil(window.closes_at - now)))
            return Verdict(429, wire.error_json("rate_limit_error", USAGE_LIMIT_MESSAGE), headers)
        if main:
            window.served += 1
        used = window.served / max(1, s.window_requests)
        status = "allowed_warning" if used >= s.warn_utilization else "allowed"
        headers = _unified_headers(status, utilization=used, reset=reset)
        if status == "allowed_warning":
            headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = str(s.warn_utilization)
        return Verdict(headers=headers)


def _unified_headers(status: str, *, utilization: float, reset: int) -> dict[str, str]:
    """The subscription (unified) rate-limit headers for the five-hour window."""
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": str(reset),
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-fallback-percentage": "0.5",
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": str(reset),
        "anthropic-ratelimit-unified-5h-utilization": f"{utilization:.2f}",
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-reset": str(reset + 6 * 24 * 3600),
        "anthropic-ratelimit-unified-7d-utilization": "0.12",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
    }

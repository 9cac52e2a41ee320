"""Rate limiting and fault injection for the REST API.

`RateLimitWindow` is the primary (hourly) limit every response reports in its
`x-ratelimit-*` headers; when it runs out the API answers 403 until the reset,
as GitHub does. `Faults` lets a test make the next requests fail the ways
GitHub fails: a secondary rate limit (403 + `retry-after`), an exhausted
primary limit (403, `x-ratelimit-remaining: 0`, reset in the near future), 429,
or a 5xx. A fault may be narrowed with `match`, a regular expression searched
in "METHOD /path" (path without `/api/v3` and without the query string).
"""

from __future__ import annotations

import enum
import math
import re
import threading
import time
from dataclasses import dataclass

from .errors import ApiError

RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


class FaultKind(enum.StrEnum):
    SECONDARY_RATE_LIMIT = "secondary_rate_limit"
    PRIMARY_RATE_LIMIT = "primary_rate_limit"
    TOO_MANY_REQUESTS = "too_many_requests"
    SERVER_ERROR = "server_error"


@dataclass
class Fault:
    kind: FaultKind
    remaining: int | None  # requests still to fail; None: until `until`
    until: float | None = None  # time.monotonic() deadline
    reset_epoch: int | None = None  # x-ratelimit-reset for primary faults
    retry_after_s: int | None = None
    status: int = 500
    match: re.Pattern[str] | None = None

    def applies(self, target: str) -> bool:
        return self.match is None or self.match.search(target) is not None

    def expired(self) -> bool:
        if self.remaining is not None:
            return self.remaining <= 0
        return self.until is not None and time.monotonic() >= self.until


@dataclass(frozen=True)
class RateSnapshot:
    limit: int
    remaining: int
    reset: int
    used: int
    resource: str = "core"

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": self.resource,
        }

    def json(self) -> dict[str, int]:
        return {"limit": self.limit, "used": self.used, "remaining": self.remaining,
                "reset": self.reset}


class RateLimitWindow:
    """The primary limit: `limit` requests per `window_s`, reset at a whole epoch second."""

    def __init__(self, *, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._used = 0
        self._reset = self._next_reset()

    def _next_reset(self) -> int:
        return math.ceil(time.time() + self.window_s)

    def _roll(self) -> None:
        if time.time() >= self._reset:
            self._used = 0
            self._reset = self._next_reset()

    def consume(self) -> RateSnapshot | None:
        """Count one request; None when the window is exhausted."""
        with self._lock:
            self._roll()
            if self._used >= self.limit:
                return None
            self._used += 1
            return self._snapshot()

    def snapshot(self) -> RateSnapshot:
        with self._lock:
            self._roll()
            return self._snapshot()

    def exhausted(self, reset_epoch: int | None = None) -> RateSnapshot:
        with self._lock:
            return RateSnapshot(self.limit, 0, reset_epoch or self._reset, self.limit)

    def _snapshot(self) -> RateSnapshot:
        return RateSnapshot(self.limit, self.limit - self._used, self._reset, self._used)


class Faults:
    """Queued faults; the first one matching a request answers it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def secondary_rate_limit(self, count: int = 1, *, retry_after_s: int = 1,
                             match: str | None = None) -> None:
        """Next `count` requests: 403, secondary-rate-limit message, `retry-after`."""
        self._add(Fault(FaultKind.SECONDARY_RATE_LIMIT, count, retry_after_s=retry_after_s,
                        status=403, match=_compile(match)))

    def primary_rate_limit(self, count: int | None = None, *, reset_in_s: float = 2.0,
                           match: str | None = None) -> None:
        """403 with `x-ratelimit-remaining: 0` and the reset `reset_in_s` from now.

        With `count` None every request fails until the reset, as on GitHub;
        otherwise only the next `count` requests do.
        """
        reset_epoch = math.ceil(time.time() + reset_in_s)
        until = time.monotonic() + (reset_epoch - time.time())
        self._add(Fault(FaultKind.PRIMARY_RATE_LIMIT, count, until=until,
                        reset_epoch=reset_epoch, status=403, match=_compile(match)))

    def too_many_requests(self, count: int = 1, *, retry_after_s: int | None = 1,
                          match: str | None = None) -> None:
        """Next `count` requests: 429, with `retry-after` unless it is None."""
        self._add(Fault(FaultKind.TOO_MANY_REQUESTS, count, retry_after_s=retry_after_s,
                        status=429, match=_compile(match)))

    def server_error(self, count: int = 1, *, status: int = 500,
                     match: str | None = None) -> None:
        """Next `count` requests: `status` (500, 502, 503 ...)."""
        self._add(Fault(FaultKind.SERVER_ERROR, count, status=status, match=_compile(match)))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            self._faults = [f for f in self._faults if not f.expired()]
            return list(self._faults)

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault answering this request, if any (and count it as used)."""
        target = f"{method} {path}"
        with self._lock:
            self._faults = [f for f in self._faults if not f.expired()]
            for fault in self._faults:
                if fault.applies(target):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            return None


def fault_error(fault: Fault, request_id: str) -> tuple[ApiError, dict[str, str]]:
    """The error body and extra headers GitHub sends for `fault`."""
    headers: dict[str, str] = {}
    if fault.retry_after_s is not None:
        headers["retry-after"] = str(fault.retry_after_s)
    if fault.kind is FaultKind.SERVER_ERROR:
        return ApiError(fault.status, "Server Error"), headers
    if fault.kind is FaultKind.PRIMARY_RATE_LIMIT:
        return primary_limit_error(), headers
    return ApiError(fault.status, (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try"
        " again. If you reach out to GitHub Support for help, please include the request ID"
        f" {request_id}."
    ), f"{RATE_LIMIT_DOCS}#about-secondary-rate-limits"), headers


def primary_limit_error() -> ApiError:
    return ApiError(403, (
        "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help,"
        " please include the request ID."
    ), f"{RATE_LIMIT_DOCS}#about-primary-rate-limits")


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None

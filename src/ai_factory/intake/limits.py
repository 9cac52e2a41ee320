"""GitHub's REST limits, as intake honours them.

Owns two decisions, kept apart from the HTTP calls so they can be read (and
tested) on their own:

- `retry_delay`: after a failed request, wait how long before trying again, or
  give up? GitHub's rules: on 403/429, wait `retry-after` seconds if it is sent,
  else until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0, else at least
  a minute, doubling each time; a 5xx is retried a few times with a short backoff.
  A 403 that is none of these (a permission problem) is not retried.
- `WritePacer`: mutating requests (POST, PATCH, PUT, DELETE) at least
  INTAKE_WRITE_INTERVAL_S apart (GitHub asks for one second), across the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

MAX_RATE_LIMIT_RETRIES = 5
MAX_SERVER_ERROR_RETRIES = 3
RATE_LIMIT_BACKOFF_S = 60.0  # "wait at least one minute" when GitHub gives no hint
SERVER_ERROR_BACKOFF_S = 1.0
MAX_WAIT_S = 3600.0 + 60.0  # a primary window resets within the hour

Sleep = Callable[[float], Awaitable[None]]


def is_rate_limited(status: int, headers: Mapping[str, str], message: str) -> bool:
    if status == 429:
        return True
    if status != 403:
        return False
    return (
        "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message.lower()
    )


def retry_delay(
    status: int,
    headers: Mapping[str, str],
    message: str,
    attempt: int,
    *,
    now: float | None = None,
    backoff_s: float = RATE_LIMIT_BACKOFF_S,
    server_backoff_s: float = SERVER_ERROR_BACKOFF_S,
) -> float | None:
    """Seconds to wait before retry number `attempt + 1`, or None to give up.

    `headers` must be case-insensitive or lower-cased (httpx's are).
    """
    if is_rate_limited(status, headers, message):
        if attempt >= MAX_RATE_LIMIT_RETRIES:
            return None
        retry_after = _number(headers.get("retry-after"))
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_WAIT_S)
        reset = _number(headers.get("x-ratelimit-reset"))
        if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            now = time.time() if now is None else now
            return min(max(reset - now, 0.0) + 1.0, MAX_WAIT_S)  # +1: the reset is a whole second
        return min(backoff_s * 2**attempt, MAX_WAIT_S)
    if status >= 500 and attempt < MAX_SERVER_ERROR_RETRIES:
        return server_backoff_s * 2**attempt
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class WritePacer:
    """Spaces mutating requests at least `interval_s` apart (measured end to start)."""

    def __init__(self, *, interval_s: float, sleep: Sleep = asyncio.sleep) -> None:
        self.interval_s = interval_s
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last_write = float("-inf")

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        wait = self._last_write + self.interval_s - time.monotonic()
        if wait > 0:
            try:
                await self._sleep(wait)
            except BaseException:
                self._lock.release()
                raise

    async def __aexit__(self, *_exc: object) -> None:
        self._last_write = time.monotonic()
        self._lock.release()

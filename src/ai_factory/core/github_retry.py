"""When to retry a GitHub REST call: one rule for intake and the worker.

GitHub's documented rules: on 403/429, wait `retry-after` seconds if it is sent,
else until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0, else back off
(at least a minute, GitHub asks), doubling each time; a 5xx or no answer at all is
retried a few times with a short backoff. A 403 that is none of these (a
permission problem) and every other 4xx are not retried. Callers own the HTTP
call and the sleeping; this module only decides.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

MAX_RATE_LIMIT_RETRIES = 5
MAX_SERVER_ERROR_RETRIES = 3
RATE_LIMIT_BACKOFF_S = 60.0  # "wait at least one minute" when GitHub gives no hint
SERVER_ERROR_BACKOFF_S = 1.0
MAX_WAIT_S = 3600.0 + 60.0  # a primary window resets within the hour


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

    `status` 0 means no response (a network error or a timeout). `headers` must be
    case-insensitive or lower-cased (httpx's are).
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
    if (status == 0 or status >= 500) and attempt < MAX_SERVER_ERROR_RETRIES:
        return server_backoff_s * 2**attempt
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None

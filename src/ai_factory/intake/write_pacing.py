"""How intake paces its writes to GitHub (when to retry a failed call is
`ai_factory.core.github_retry`, shared with the worker).

- `WritePacer`: mutating requests (POST, PATCH, PUT, DELETE) at least
  INTAKE_WRITE_INTERVAL_S apart (GitHub asks for one second), across the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


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

"""Waiting with a time limit without losing a cancellation.

On Python 3.11, `asyncio.wait_for` returns the awaited result when its task is cancelled
at the moment that result arrives: the cancellation is lost (Python 3.12 fixed it). A loop
that waits for an event that way can survive its `cancel()` and run for ever. The worker's
heartbeat did: `set_phase` woke it just as `stop()` cancelled it, so the worker kept
beating and never exited. `asyncio.timeout` keeps the cancellation; the code uses it
instead of `wait_for` (a unit test holds it to that).
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` seconds pass; True when it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True

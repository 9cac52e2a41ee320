"""`wait_event`: a cancellation that arrives as the event is set is never lost, and the
code waits with it (or `asyncio.timeout`), never with `asyncio.wait_for`."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from ai_factory.core.waiting import wait_event

SRC = Path(__file__).resolve().parents[3] / "src" / "ai_factory"


async def test_a_cancel_that_comes_as_the_event_is_set_is_kept() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, 60))
    await asyncio.sleep(0)  # it waits now
    event.set()
    waiting.cancel()  # in the same tick: Python 3.11's wait_for returned True here
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_it_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True


def test_no_code_waits_with_asyncio_wait_for() -> None:
    users = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bwait_for\(", line) and not line.lstrip().startswith("#")
    ]
    assert users == [], "use core.waiting.wait_event or asyncio.timeout (see its docstring)"

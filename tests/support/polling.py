"""Waiting for a condition by polling: generous deadlines, no timing claims."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float = 60, what: str = "condition") -> T:
    """Poll until `check()` returns something truthy; generous deadlines, no timing claims."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

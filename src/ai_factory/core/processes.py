"""Signalling the process groups the factory starts (workers, gates, agent commands, git),
and keeping the factory's own processes closed to their neighbours.

Every child that may start children of its own runs in a new session, so one
signal to its process group reaches them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to process group `pgid`; a group already gone is not an error.

    A process group id is not reused while any member lives, so this never hits a
    stranger; ESRCH just means the whole group has exited.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def make_undumpable() -> None:
    """PR_SET_DUMPABLE 0 (Linux): processes of the same user (an agent's tools among them)
    can no longer ptrace this one, read its memory, or read /proc/<pid>/environ, fd/ and
    the like, which become root's. For the orchestrator (GITHUB_TOKEN may be in its
    environment) and the worker (its tokens are in its memory). Children do not keep it
    past exec."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("process.prctl_failed errno=%s", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.warning("process.prctl_unavailable error=%s", exc)

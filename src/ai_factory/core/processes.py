"""Signalling the process groups the factory starts (workers, gates, agent commands, git).

Every child that may start children of its own runs in a new session, so one
signal to its process group reaches them all.
"""

from __future__ import annotations

import contextlib
import os
import signal


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to process group `pgid`; a group already gone is not an error.

    A process group id is not reused while any member lives, so this never hits a
    stranger; ESRCH just means the whole group has exited.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)

"""What the agent left running, stopped before the worker pushes.

The agent can start processes that outlive its session (``nohup``, ``setsid``, a
daemon). One still running during the push could change the branch under it, and,
when it runs as the worker's own user, read the environment of the push's git and
credential helper, which hold the GitHub token.

The worker process (`factory worker`) makes itself a child subreaper, so whatever the
agent starts stays its descendant however it detaches. `stop_leftovers` stops them:
SIGSTOP round after round until no new one appears (a forking loop cannot outrun it),
then SIGKILL, and reaps those that became its children. With the agent's uid it takes
only descendants running as that user, which is safe in any process; without one (the
agent runs as the worker's user) it takes every descendant, and only in a subreaper,
i.e. a dedicated worker process, whose only descendants at that point are the agent's.
Descendants, not every process of the uid: workers on one host share the agent's user,
and another worker's agent is not this one's to stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_PR_GET_CHILD_SUBREAPER = 37
MAX_ROUNDS = 50
REAP_WAIT_S = 2.0


def _prctl(option: int, arg: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, arg, 0, 0, 0))


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); whether it is."""
    if sys.platform != "linux":
        return False
    try:
        return _prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    if sys.platform != "linux":
        return False
    flag = ctypes.c_int(0)
    try:
        return _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.pointer(flag)) == 0 and flag.value != 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class _Proc:
    ppid: int
    uid: int
    state: str


def _processes() -> dict[int, _Proc]:
    found: dict[int, _Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{name}/status") as handle:
                uid_line = next(line for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and ')'
        found[int(name)] = _Proc(ppid=int(fields[1]), uid=int(uid_line.split()[1]),
                                 state=fields[0])  # fmt: skip
    return found


def _descendants(root: int, procs: dict[int, _Proc]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def stop_leftovers(*, uid: int | None) -> int:
    """Kill this process's descendants that the agent left: those running as `uid`, or
    (`uid` None) all of them when this process is a subreaper. How many were killed."""
    if sys.platform != "linux" or (uid is None and not is_subreaper()):
        return 0
    me = os.getpid()
    stopped: set[int] = set()
    zombies: set[int] = set()
    for _ in range(MAX_ROUNDS):
        procs = _processes()
        mine = [pid for pid in _descendants(me, procs) if uid is None or procs[pid].uid == uid]
        zombies |= {pid for pid in mine if procs[pid].state in "ZX" and procs[pid].ppid == me}
        fresh = [pid for pid in mine if pid not in stopped and procs[pid].state not in "ZX"]
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap(me, stopped | zombies)
    if stopped:
        log.warning("agent.leftovers_stopped count=%s", len(stopped))
    return len(stopped)


def _reap(me: int, pids: set[int]) -> None:
    """Collect the exit of those that are (or became) this process's children."""
    deadline = time.monotonic() + REAP_WAIT_S
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        procs = _processes()
        for pid in list(waiting):
            proc = procs.get(pid)
            if proc is None or (proc.ppid != me and proc.ppid not in pids):
                waiting.discard(pid)  # gone, or someone else's to reap
                continue
            if proc.ppid != me:
                continue  # becomes this process's child when its parent, also killed, is gone
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            waiting.discard(pid)
        if waiting:
            time.sleep(0.02)

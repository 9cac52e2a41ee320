"""Start-and-stop helpers for tests that run the factory or its workers as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def wait_until_healthy(
    url: str, proc: subprocess.Popen, *, timeout_s: float, output: Callable[[], str]
) -> None:
    """Wait for `url`/healthz to answer 200; fail with `output()` if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            state = "exited" if proc.poll() is not None else f"not healthy in {timeout_s:g} s"
            if proc.poll() is None:
                proc.kill()
            raise AssertionError(f"factory {state}:\n{output()}")
        time.sleep(0.2)


def stop_gracefully(proc: subprocess.Popen, *, timeout_s: float = 60) -> None:
    """SIGTERM, then SIGKILL (to its process group when it leads one) after `timeout_s`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def claude_children() -> list[int]:
    """Pids of the `claude` CLIs this test process started that are still running."""
    import psutil

    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if Path(child.exe()).name == "claude" and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child.pid)
        except psutil.Error:  # gone meanwhile
            continue
    return alive

"""The `process` spawner: each worker is a child process in its own process group.

The child gets the worker environment, no stdin, and its stdout+stderr go straight
into the item's log file, so it keeps running (and logging) if the orchestrator
dies; the next orchestrator adopts it. A pid is only trusted together with its
start time from /proc, so a reused pid is never taken for our worker. Ends are
reported at once: children through `wait()`, adopted processes through a pidfd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

from ai_factory.core.launch_secrets import SECRETS_FD_VAR, secrets_pipe
from ai_factory.core.processes import signal_group
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners.base import (
    SpawnError,
    WorkerExit,
    WorkerHandle,
    WorkerLaunch,
    log_header,
    worker_env,
    worker_secrets,
)

log = logging.getLogger(__name__)

POLL_S = 0.05
KILL_WAIT_S = 30.0  # after SIGKILL; only a process stuck in the kernel (D state) outlasts it


def default_worker_argv() -> list[str]:
    """`factory worker` with this interpreter (works in a venv without PATH), entered
    as `python -m ai_factory.worker` to skip the CLI's imports."""
    return [sys.executable, "-m", "ai_factory.worker"]


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class ProcessSpawner:
    name = "process"

    def __init__(
        self,
        *,
        settings: Settings,
        logs: WorkerLogs,
        argv: list[str] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.logs = logs
        self.argv = argv or settings.worker_command or default_worker_argv()
        self.base_env = base_env
        self.host = socket.gethostname()
        self.exits: asyncio.Queue[WorkerExit] = asyncio.Queue()
        self._handles: dict[UUID, WorkerHandle] = {}
        self._watchers: dict[UUID, asyncio.Task[None]] = {}

    async def check(self) -> None:
        """The process spawner works anywhere the worker command exists. As root, workers
        run their agents as FACTORY_AGENT_USER: the user is made now if missing, and must
        be able to reach FACTORY_HOME (a clear error here rather than at every item)."""
        from ai_factory.worker.agent_user import AgentUser  # the worker's; imported on use

        await asyncio.to_thread(AgentUser.for_worker, self.settings)

    def command(self, launch: WorkerLaunch) -> list[str]:
        return list(self.argv)

    async def spawn(self, launch: WorkerLaunch) -> WorkerHandle:
        env = worker_env(launch, settings=self.settings, base=self.base_env)
        secrets = secrets_pipe(worker_secrets(launch, settings=self.settings))
        env[SECRETS_FD_VAR] = str(secrets)
        argv = self.command(launch)
        fd = self.logs.open_append(launch.item.id, log_header(launch, self.name))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=(secrets,),
                start_new_session=True,
            )
        except OSError as exc:
            os.write(fd, f"cannot start {argv[0]}: {exc.strerror or exc}\n".encode())
            raise SpawnError(f"cannot start worker command {argv[0]!r}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
            os.close(secrets)
        handle = WorkerHandle(
            worker_id=launch.worker_id,
            spawner=self.name,
            work_item_id=launch.item.id,
            pid=proc.pid,
            pid_start=process_start_ticks(proc.pid),
            spawn_host=self.host,
        )
        self._track(handle, self._wait_child(handle, proc))
        return handle

    def can_check(self, handle: WorkerHandle) -> bool:
        return handle.pid is not None and handle.spawn_host == self.host

    async def alive(self, handle: WorkerHandle) -> bool:
        if not self.can_check(handle):
            return False
        assert handle.pid is not None
        ticks = process_start_ticks(handle.pid)
        return ticks is not None and (handle.pid_start is None or ticks == handle.pid_start)

    async def watch(self, handle: WorkerHandle) -> bool:
        if handle.worker_id in self._handles:
            return True
        if not await self.alive(handle):
            return False
        assert handle.pid is not None
        try:
            pidfd = os.pidfd_open(handle.pid)
        except (AttributeError, OSError):
            pidfd = None
        # The pid may have been reused between the check and pidfd_open: check again.
        if not await self.alive(handle):
            if pidfd is not None:
                os.close(pidfd)
            return False
        self._track(handle, self._wait_adopted(handle, pidfd))
        return True

    async def stop(self, handle: WorkerHandle, *, grace_s: float) -> None:
        if not self.can_check(handle):
            return
        assert handle.pid is not None
        if not await self.alive(handle):
            signal_group(handle.pid, signal.SIGKILL)  # stragglers of a finished worker
            return
        signal_group(handle.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and await self.alive(handle):
            await asyncio.sleep(POLL_S)
        signal_group(handle.pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while await self.alive(handle):  # SIGKILL lands within moments ...
            if time.monotonic() > deadline:  # ... unless the process is stuck in the kernel
                log.error("worker.unkillable worker=%s pid=%s", handle.worker_id, handle.pid)
                return
            await asyncio.sleep(POLL_S)

    def tracked(self) -> list[WorkerHandle]:
        return list(self._handles.values())

    async def close(self) -> None:
        for task in self._watchers.values():
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
        self._handles.clear()

    # --- helpers ---

    def _track(self, handle: WorkerHandle, watcher) -> None:
        self._handles[handle.worker_id] = handle
        self._watchers[handle.worker_id] = asyncio.create_task(
            watcher, name=f"watch-worker-{handle.worker_id}"
        )

    async def _wait_child(self, handle: WorkerHandle, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        assert handle.pid is not None
        signal_group(handle.pid, signal.SIGKILL)  # grandchildren the worker left behind
        self._report(handle, code)

    async def _wait_adopted(self, handle: WorkerHandle, pidfd: int | None) -> None:
        try:
            if pidfd is not None:
                readable = asyncio.Event()
                loop = asyncio.get_running_loop()
                loop.add_reader(pidfd, readable.set)
                try:
                    await readable.wait()
                finally:
                    loop.remove_reader(pidfd)
            else:
                while await self.alive(handle):
                    await asyncio.sleep(0.5)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        assert handle.pid is not None
        signal_group(handle.pid, signal.SIGKILL)
        self._report(handle, None)

    def _report(self, handle: WorkerHandle, code: int | None) -> None:
        self._handles.pop(handle.worker_id, None)
        self._watchers.pop(handle.worker_id, None)
        log.info("worker.exited worker=%s %s code=%s", handle.worker_id, handle.describe(), code)
        self.exits.put_nowait(WorkerExit(worker_id=handle.worker_id, exit_code=code))


"""The command driver: the user's own loop (``ralph``) runs every iteration itself.

Owns: starting FACTORY_AGENT_COMMAND (default ``ralph run --headless --spec
SPEC.md``, split with shlex into argv; never through a shell) in the worktree,
with no stdin, in its own process group, as the agent's user when the worker is
root (`agent_user`), and reading these lines of its output:

- ``iteration: N`` starts inner iteration N: the previous one is reported as
  finished, and a heartbeat goes out;
- ``edit: PATH`` names a file it edits: the worker asks for its lock and lists
  it as edited. The edit has already happened, so a conflict can only be
  reported (the orchestrator records it), not prevented;
- ``tokens: N`` adds N to the iteration's tokens (a total with no input/output
  split; reported as output tokens).

Every output line is echoed to the worker's log. The run is cut when no line
arrives for ITERATION_IDLE_TIMEOUT_SECONDS seconds or one inner iteration lasts longer
than ITERATION_TIMEOUT_SECONDS, and when the worker must stop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from ai_factory.core.processes import signal_group
from ai_factory.worker.agent import AgentRequest, AgentUnavailableError
from ai_factory.worker.agent.result import IterationResult, StopReason
from ai_factory.worker.agent.tools import repo_relative
from ai_factory.worker.agent_user import AgentUser
from ai_factory.worker.hooks import FileLocks

log = logging.getLogger(__name__)

_ITERATION = re.compile(r"\biteration:\s*(\d+)", re.IGNORECASE)
_EDIT = re.compile(r"\bedit:\s*(\S.*?)\s*$", re.IGNORECASE)
_TOKENS = re.compile(r"\btokens:\s*(\d+)", re.IGNORECASE)
LINE_LIMIT_BYTES = 1024 * 1024
TERM_GRACE_S = 5.0


class CommandDriver:
    name = "command"
    runs_own_loop = True

    def __init__(
        self,
        *,
        argv: list[str],
        env: Mapping[str, str],
        idle_timeout_s: float,
        wall_timeout_s: float,
        locks: FileLocks | None = None,
        run_as: AgentUser | None = None,
    ) -> None:
        if not argv:
            raise AgentUnavailableError("FACTORY_AGENT_COMMAND is empty")
        self.argv = argv
        self.env = {**env, "RALPH_HEADLESS": "true", **(run_as.env() if run_as else {})}
        self.run_as = run_as
        self.idle_timeout_s = idle_timeout_s
        self.wall_timeout_s = wall_timeout_s
        self.locks = locks

    async def run(self, request: AgentRequest) -> IterationResult:
        argv = self.run_as.command(self.argv) if self.run_as else self.argv
        try:
            name, path = self.argv[0], self.env.get("PATH")  # setpriv would only exit 127
            if self.run_as and "/" not in name and not shutil.which(name, path=path):
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=request.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                limit=LINE_LIMIT_BYTES,
            )
        except OSError as exc:
            raise AgentUnavailableError(
                f"cannot start the agent command {self.argv[0]!r}: {exc.strerror or exc}"
                " (set FACTORY_AGENT_COMMAND, or FACTORY_AGENT=claude)"
            ) from exc
        log.info("agent.command_started pid=%s argv=%s", proc.pid, self.argv[0])
        run = _Run(request=request, root=request.cwd)
        try:
            stop = await self._read(proc, run, request)
        finally:
            if proc.returncode is None:
                await _terminate(proc)
        result = run.current
        result.stop = stop or StopReason.FINISHED
        result.exit_code = proc.returncode
        result.got_result = stop is None
        result.output_tail = "\n".join(run.tail)
        if stop is None and proc.returncode:
            result.process_error = f"{self.argv[0]} exited with code {proc.returncode}"
        result.duration_ms = int((time.monotonic() - run.iteration_started) * 1000)
        log.info("agent.command_ended code=%s inner_iterations=%s", proc.returncode, run.inner)
        return result

    async def _read(
        self, proc: asyncio.subprocess.Process, run: _Run, request: AgentRequest
    ) -> StopReason | None:
        assert proc.stdout is not None
        last_line = time.monotonic()
        while True:
            now = time.monotonic()
            idle_left = last_line + self.idle_timeout_s - now
            wall_left = run.iteration_started + self.wall_timeout_s - now
            if wall_left <= 0:
                return StopReason.WALL_TIMEOUT
            if idle_left <= 0:
                return StopReason.IDLE_TIMEOUT
            if request.stop.is_set():
                return StopReason.CANCELLED
            reading = asyncio.ensure_future(proc.stdout.readline())
            stopping = asyncio.ensure_future(request.stop.wait())
            done, _ = await asyncio.wait({reading, stopping}, timeout=min(idle_left, wall_left),
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            stopping.cancel()
            if reading not in done:
                reading.cancel()
                await asyncio.wait({reading})  # (a cancel of this run itself still propagates)
                if not reading.cancelled():
                    reading.exception()  # a line over the limit, read as the time ran out
                continue
            try:
                raw = reading.result()
            except ValueError:  # a line over LINE_LIMIT_BYTES: skip what is buffered
                raw = await proc.stdout.read(LINE_LIMIT_BYTES)
            if not raw:  # its output ended; its exit should follow
                return await self._exit(proc, run, request)
            last_line = time.monotonic()
            await self._line(raw.decode(errors="replace").rstrip("\r\n"), run)

    async def _exit(
        self, proc: asyncio.subprocess.Process, run: _Run, request: AgentRequest
    ) -> StopReason | None:
        """Wait for a command whose output ended to exit, no longer than the idle and wall
        limits allow, and not once the worker is stopping (the caller then ends it)."""
        wall_left = run.iteration_started + self.wall_timeout_s - time.monotonic()
        exiting = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(request.stop.wait())
        await asyncio.wait({exiting, stopping}, timeout=max(0.0, min(self.idle_timeout_s, wall_left)),
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        for waiter in (exiting, stopping):
            waiter.cancel()
        if proc.returncode is not None:
            return None
        if request.stop.is_set():
            return StopReason.CANCELLED
        return StopReason.IDLE_TIMEOUT if self.idle_timeout_s < wall_left else StopReason.WALL_TIMEOUT

    async def _line(self, line: str, run: _Run) -> None:
        log.info("agent.output %s", line)
        run.tail.append(line)
        if match := _ITERATION.search(line):
            await run.start_inner(int(match.group(1)))
        if match := _EDIT.search(line):
            path = repo_relative(match.group(1), run.root)
            if path not in run.current.files_edited:
                run.current.files_edited.append(path)
            if self.locks is not None:
                verdict = await self.locks.acquire(path)
                if not verdict.allowed:
                    run.current.denied_edits.append(path)
                    log.warning(
                        "lock.conflict_after_edit file=%s (the external agent edited it)", path
                    )
        if match := _TOKENS.search(line):
            run.current.output_tokens += int(match.group(1))


class _Run:
    """State of one external run: the inner iteration being read."""

    def __init__(self, *, request: AgentRequest, root: Path) -> None:
        self.request = request
        self.root = root
        self.current = IterationResult()
        self.inner = 0
        self.iteration_started = time.monotonic()
        self.tail: deque[str] = deque(maxlen=40)

    async def start_inner(self, number: int) -> None:
        if self.inner > 0 and self.request.on_inner_iteration is not None:
            finished = self.current
            finished.got_result = True
            finished.duration_ms = int((time.monotonic() - self.iteration_started) * 1000)
            await self.request.on_inner_iteration(finished)
            self.current = IterationResult()
        self.inner += 1
        self.iteration_started = time.monotonic()
        log.info("agent.inner_iteration number=%s", number)
        if self.request.on_inner_start is not None:
            self.request.on_inner_start(number)


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, SIGKILL it after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, TERM_GRACE_S)):
        signal_group(proc.pid, sig)
        try:
            async with asyncio.timeout(wait_s):
                await proc.wait()
            return
        except TimeoutError:
            continue

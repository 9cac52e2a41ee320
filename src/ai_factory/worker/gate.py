"""The quality gate: the repository's test command, run by the worker after each iteration.

Owns: which command is the gate, running it with a timeout, and what of its
output goes back to the agent.

The command comes from the repository's ``.factory.toml``::

    [gates]
    test = "pytest -q"          # or an argv list: ["pytest", "-q"]

and otherwise from FACTORY_TEST_COMMAND (the factory-wide default). The
repository's own file wins because it knows its language; the variable is for
repositories without one. It is read from the base branch's commit, never the
worktree, so an agent cannot weaken the gate by editing the file (nor a worktree
reused from an earlier attempt carry an edited one). The command line is user
configuration: it is split with shlex into argv and run without a shell (wrap it
in ``sh -c '...'`` in the configuration if it needs one). No command: there is
no gate, and checked boxes alone mean done.

The gate runs in the worktree with the agent's environment (no factory secrets),
as the agent's user when the worker is root (`agent_user`: the gate runs the
repository's code), no stdin, in its own process group (killed as a whole on
timeout). Its failing output's tail goes into the next iteration's prompt; a
fingerprint of that tail (numbers and durations blanked) tells the stuck detector
when the same failure repeats.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ai_factory.core.errors import ConfigError
from ai_factory.core.processes import signal_group
from ai_factory.worker.agent_user import AgentUser

log = logging.getLogger(__name__)

CONFIG_FILE = ".factory.toml"
TAIL_CHARS = 4000
TAIL_LINES = 80
KEEP_BYTES = 256 * 1024  # the end of the output that is read back; the tail is cut from it
_VOLATILE = re.compile(r"0x[0-9a-f]+|\d+(?:\.\d+)?(?:ms|s)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    command: str
    exit_code: int | None
    output_tail: str
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def fingerprint(self) -> str:
        """Same failure, same fingerprint (timings and addresses ignored)."""
        normal = _VOLATILE.sub("#", self.output_tail.lower())
        return hashlib.sha256(f"{self.exit_code}|{normal}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        if self.passed:
            return f"`{self.command}` passed"
        if self.timed_out:
            return f"`{self.command}` did not finish in time"
        return f"`{self.command}` exited with code {self.exit_code}"


class QualityGate:
    def __init__(
        self,
        *,
        argv: list[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        source: str = "",
        run_as: AgentUser | None = None,
    ) -> None:
        if not argv:
            raise ConfigError("the quality gate command is empty")
        self.argv = argv
        self.timeout_s = timeout_s
        self.env = dict(env) if env is not None else None
        self.source = source
        self.run_as = run_as

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @classmethod
    def resolve(
        cls,
        *,
        config_text: str | None,
        configured: str | None,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        run_as: AgentUser | None = None,
    ) -> QualityGate | None:
        """The gate: `config_text` (the repository's .factory.toml), else `configured`.

        The caller reads .factory.toml from the base commit, not the worktree: the
        agent must not be able to choose the command that judges its own work.
        """
        from_file = _from_config_text(config_text)
        if from_file is not None:
            return cls(argv=from_file, timeout_s=timeout_s, env=env, source=CONFIG_FILE,
                       run_as=run_as)
        if configured and configured.strip():
            try:
                argv = shlex.split(configured)
            except ValueError as exc:
                raise ConfigError(
                    f"FACTORY_TEST_COMMAND: not a valid command line ({exc})"
                ) from None
            return cls(argv=argv, timeout_s=timeout_s, env=env, source="FACTORY_TEST_COMMAND",
                       run_as=run_as)
        return None

    async def run(self, cwd: Path) -> GateResult:
        started = time.monotonic()
        log.info("gate.started command=%s", self.command)
        argv, env = self.argv, self.env
        # Output to an unnamed file, not a pipe: the command ends when it exits, even if a
        # server it started in a session of its own still holds the output open.
        output = tempfile.TemporaryFile()
        try:  # (closed below on every way out)
            if self.run_as is not None:
                env = {**(env if env is not None else os.environ), **self.run_as.env()}
                if "/" not in argv[0] and not shutil.which(argv[0], path=env.get("PATH")):
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
                argv = self.run_as.command(argv)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException as exc:
            output.close()
            if not isinstance(exc, OSError):
                raise
            result = GateResult(
                False, self.command, None, f"cannot run {self.argv[0]!r}: {exc.strerror or exc}"
            )
            log.warning("gate.failed command=%s error=%s", self.command, result.output_tail)
            return result
        timed_out = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await proc.wait()
        except TimeoutError:
            timed_out = True
        except BaseException:  # the worker is stopping: the gate goes with it
            signal_group(proc.pid, signal.SIGKILL)
            output.close()
            raise
        # Its process group goes: the gate itself when its time ran out, else what it left
        # running (a server its tests started, say).
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        tail = _tail(_read_end(output))
        if timed_out:
            tail += f"\n(the gate was stopped after GATE_TIMEOUT_SECONDS={self.timeout_s:g} s)"
        result = GateResult(
            passed=proc.returncode == 0 and not timed_out,
            command=self.command,
            exit_code=proc.returncode,
            output_tail=tail,
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
        )
        if result.passed:
            log.info("gate.passed command=%s duration_s=%.1f", self.command, result.duration_s)
        else:
            last = tail.strip().splitlines()[-1:] or [""]
            log.warning("gate.failed %s last_line=%s", result.describe(), last[0][:200])
        return result


def _read_end(output: BinaryIO) -> str:
    with output:
        size = output.seek(0, os.SEEK_END)
        output.seek(max(0, size - KEEP_BYTES))
        return output.read().decode(errors="replace")


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


def _from_config_text(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{CONFIG_FILE}: not valid TOML ({exc})") from None
    gates = data.get("gates")
    if not isinstance(gates, dict) or "test" not in gates:
        return None
    test = gates["test"]
    if isinstance(test, str):
        try:
            argv = shlex.split(test)
        except ValueError as exc:
            raise ConfigError(
                f"{CONFIG_FILE}: [gates] test is not a valid command line ({exc})"
            ) from None
    elif isinstance(test, list) and all(isinstance(part, str) for part in test):
        argv = list(test)
    else:
        raise ConfigError(f"{CONFIG_FILE}: [gates] test must be a string or a list of strings")
    return argv or None

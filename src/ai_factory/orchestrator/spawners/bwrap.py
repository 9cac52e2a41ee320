"""The `bwrap` spawner: the process spawner inside a bubblewrap sandbox.

The whole system is mounted read-only; only FACTORY_HOME (mirrors, worktrees, logs,
caches) and Claude Code's own state (~/.claude, ~/.claude.json, when present) are
writable, /tmp is private, and the network is kept (the worker talks to the
orchestrator, GitHub and the model). No pid namespace: the orchestrator supervises
the worker by pid and process group exactly as with the process spawner.

As root, the worker runs its agent as FACTORY_AGENT_USER (worker/agent_user.py).
/etc is read-only in the sandbox, so `check` makes that user beforehand (as the process
spawner's does), and the private /tmp is world-writable (sticky) for it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ai_factory
from ai_factory.core.errors import ConfigError
from ai_factory.orchestrator.spawners.base import WorkerLaunch
from ai_factory.orchestrator.spawners.process import ProcessSpawner

CHECK_TIMEOUT_S = 20
PRIVATE_TMP = Path("/tmp")


def runtime_paths() -> list[Path]:
    """Where this Python and the factory's code live; they must stay visible (read-only)
    in the sandbox even when they sit under /tmp, which the sandbox replaces."""
    package_root = Path(ai_factory.__file__).resolve().parents[1]  # site-packages, or src/
    found = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package_root}
    return sorted(p for p in found if p.is_relative_to(PRIVATE_TMP))


BWRAP_MISSING = (
    "FACTORY_SPAWNER: bwrap needs bubblewrap, which is not installed"
    " (apt-get install bubblewrap), or choose process or docker"
)

class BwrapSpawner(ProcessSpawner):
    name = "bwrap"

    def bwrap_argv(self) -> list[str]:
        home = str(self.settings.factory_home)
        # Files the worker command names (e.g. FACTORY_WORKER_COMMAND's script) stay visible.
        named = [Path(a) for a in self.argv if Path(a).is_absolute() and Path(a).exists()]
        visible = {*runtime_paths(), *(p for p in named if p.is_relative_to(PRIVATE_TMP))}
        # The agent's own user (the worker is root) needs /tmp as everywhere (1777), and to
        # pass through the folders bwrap makes above mount points in it (0700 by default).
        tmp_perms = ["--perms", "1777"] if self._agent_user() else []
        argv = [
            "bwrap",
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            *tmp_perms, "--tmpfs", str(PRIVATE_TMP),
        ]  # fmt: skip
        if self._agent_user():
            mounted = [*visible, Path(home)]
            above = {p for m in mounted for p in m.parents if p.is_relative_to(PRIVATE_TMP)}
            for folder in sorted(above - {PRIVATE_TMP}, key=lambda p: len(p.parts)):
                argv += ["--perms", "0711", "--dir", str(folder)]
        for path in sorted(visible):
            if not any(path != other and path.is_relative_to(other) for other in visible):
                argv += ["--ro-bind", str(path), str(path)]
        argv += ["--bind", home, home]
        for state in (Path.home() / ".claude", Path.home() / ".claude.json"):
            if state.exists():
                argv += ["--bind", str(state), str(state)]
        return [*argv, "--unshare-ipc", "--unshare-uts", "--"]

    def command(self, launch: WorkerLaunch) -> list[str]:
        return [*self.bwrap_argv(), *self.argv]

    def _agent_user(self) -> bool:
        return os.geteuid() == 0 and bool(self.settings.factory_agent_user)

    async def check(self) -> None:
        if shutil.which("bwrap") is None:
            raise ConfigError(BWRAP_MISSING)
        self.settings.factory_home.mkdir(parents=True, exist_ok=True)
        try:
            done = await asyncio.to_thread(
                subprocess.run,
                [*self.bwrap_argv(), "true"],
                capture_output=True,
                text=True,
                timeout=CHECK_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"FACTORY_SPAWNER: bwrap does not run here: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"FACTORY_SPAWNER: bwrap cannot create a sandbox here: {detail[0]}")
        await super().check()  # the agent's user, made outside the sandbox

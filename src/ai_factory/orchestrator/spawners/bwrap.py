"""The `bwrap` spawner: the process spawner inside a bubblewrap sandbox.

The whole system is mounted read-only; only FACTORY_HOME (mirrors, worktrees, logs,
caches) and Claude Code's own state (~/.claude, ~/.claude.json, when present) are
writable, /tmp is private, and the network is kept (the worker talks to the
orchestrator, GitHub and the model). No pid namespace: the orchestrator supervises
the worker by pid and process group exactly as with the process spawner.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from ai_factory.core.errors import ConfigError
from ai_factory.orchestrator.spawners.base import WorkerLaunch
from ai_factory.orchestrator.spawners.process import ProcessSpawner

CHECK_TIMEOUT_S = 20


class BwrapSpawner(ProcessSpawner):
    name = "bwrap"

    def bwrap_argv(self) -> list[str]:
        home = str(self.settings.factory_home)
        argv = [
            "bwrap",
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--bind", home, home,
        ]  # fmt: skip
        for state in (Path.home() / ".claude", Path.home() / ".claude.json"):
            if state.exists():
                argv += ["--bind", str(state), str(state)]
        return [*argv, "--unshare-ipc", "--unshare-uts", "--"]

    def command(self, launch: WorkerLaunch) -> list[str]:
        return [*self.bwrap_argv(), *self.argv]

    async def check(self) -> None:
        if shutil.which("bwrap") is None:
            raise ConfigError(
                "FACTORY_SPAWNER: bwrap needs bubblewrap, which is not installed"
                " (apt-get install bubblewrap), or choose process or docker"
            )
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

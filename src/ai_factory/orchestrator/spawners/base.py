"""What every spawner keeps: the launch request, the handle, exit reports, the worker env.

A spawner starts one worker process (or container) per claimed item and can later
say whether it is still alive, stop it, and report when it ends. Handles are plain
data stored in the worker row, so an orchestrator that restarts can find, adopt or
stop the workers its predecessor started.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, SecretStr

from ai_factory.core.errors import FactoryError
from ai_factory.core.models import WorkItem
from ai_factory.core.secrets import ORCHESTRATOR_SECRETS, WORKER_SECRETS
from ai_factory.core.settings import Settings

# What a container gets from the orchestrator's environment (its own image supplies the rest).
CONTAINER_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "FACTORY_", "GITHUB_")
CONTAINER_ENV_NAMES = frozenset(
    {
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "IS_SANDBOX", "LOG_LEVEL", "MAX_ITERATIONS", "STUCK_AFTER",
        "ITERATION_IDLE_TIMEOUT_SECONDS", "ITERATION_TIMEOUT_SECONDS", "GATE_TIMEOUT_SECONDS",
        "ITERATION_IDLE_TIMEOUT", "ITERATION_TIMEOUT", "GATE_TIMEOUT",  # their older names
    }
)  # fmt: skip


class SpawnError(FactoryError):
    """A worker could not be started (missing binary, engine down, bad image ...)."""


class WorkerLaunch(BaseModel):
    """Everything a spawner needs to start the worker for one claimed item."""

    model_config = ConfigDict(frozen=True)

    worker_id: UUID
    token: SecretStr
    item: WorkItem
    orchestrator_url: str
    attempt: int = 1


class WorkerHandle(BaseModel):
    """How to find a spawned worker again: a process (pid + start time + host) or a container."""

    model_config = ConfigDict(frozen=True)

    worker_id: UUID
    spawner: str
    work_item_id: UUID | None = None
    pid: int | None = None
    pid_start: int | None = None
    spawn_host: str = ""
    container_id: str = ""

    def describe(self) -> str:
        if self.spawner == "kubernetes":
            return f"job {self.container_id}"
        return f"container {self.container_id[:12]}" if self.container_id else f"pid {self.pid}"


class WorkerExit(BaseModel):
    """A spawned worker ended (exit code None when it is unknown, e.g. an adopted process)."""

    worker_id: UUID
    exit_code: int | None = None


class Spawner(Protocol):
    """Starts, watches and stops workers. Ends are reported on `exits`."""

    name: str
    exits: asyncio.Queue[WorkerExit]

    async def check(self) -> None:
        """Raise `ConfigError` when this spawner cannot work on this machine."""

    async def spawn(self, launch: WorkerLaunch) -> WorkerHandle:
        """Start the worker; raise `SpawnError` when it cannot be started."""

    async def alive(self, handle: WorkerHandle) -> bool:
        """Whether the worker behind the handle still runs (False when it cannot be known)."""

    def can_check(self, handle: WorkerHandle) -> bool:
        """Whether `alive` can say anything about this handle from here."""

    async def watch(self, handle: WorkerHandle) -> bool:
        """Adopt a worker started by an earlier orchestrator: report its end; False if gone."""

    async def stop(self, handle: WorkerHandle, *, grace_s: float) -> None:
        """Ask the worker to stop, kill it after `grace_s`; no error if it is gone."""

    def tracked(self) -> list[WorkerHandle]:
        """Handles of the workers this spawner is watching now."""

    async def close(self) -> None:
        """Stop watching (workers keep running)."""


def worker_env(
    launch: WorkerLaunch, *, settings: Settings, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a worker: the base minus every secret, plus its own plumbing.

    Its secrets (`launch_secrets`) go another way: see `worker_secrets`.
    """
    source = os.environ if base is None else base
    env = {
        k: v for k, v in source.items() if k.upper() not in ORCHESTRATOR_SECRETS | WORKER_SECRETS
    }
    env.update(
        {
            "WORKER_ID": str(launch.worker_id),
            "WORK_ITEM": launch.item.model_dump_json(by_alias=True),
            "ORCHESTRATOR_URL": launch.orchestrator_url,
            "HEARTBEAT_INTERVAL_SECONDS": str(settings.heartbeat_interval_seconds),
            "FACTORY_HOME": str(settings.factory_home),
        }
    )
    if settings.github_api_url and "GITHUB_API_URL" not in env:
        env["GITHUB_API_URL"] = settings.github_api_url
    return env


def worker_secrets(launch: WorkerLaunch, *, settings: Settings) -> dict[str, str]:
    """What the worker must hold and its agent must never see."""
    secrets = {"WORKER_TOKEN": launch.token.get_secret_value()}
    if settings.github_token is not None:
        secrets["GITHUB_TOKEN"] = settings.github_token.get_secret_value()
    return secrets


def container_env(launch: WorkerLaunch, *, settings: Settings) -> dict[str, str]:
    """The environment of a worker container: only what a worker needs from this host. Not
    this host's FACTORY_HOME: a path here means nothing in the container, whose image sets
    its own (/data)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(CONTAINER_ENV_PREFIXES) or k in CONTAINER_ENV_NAMES
    }
    env = worker_env(launch, settings=settings, base=base)
    env.pop("FACTORY_HOME", None)
    return env


def worker_api_url(settings: Settings) -> str:
    """Where spawned workers reach this orchestrator.

    ORCHESTRATOR_URL when it was set; otherwise this orchestrator's own HOST and PORT
    (a wildcard bind address becomes loopback): `Settings.api_url`, as the CLI uses it.
    """
    return settings.api_url


def log_header(launch: WorkerLaunch, where: str) -> str:
    return f"worker {launch.worker_id} attempt {launch.attempt} ({where})"

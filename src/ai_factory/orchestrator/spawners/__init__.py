"""Spawners start worker processes or containers, one per claimed item.

Chosen by FACTORY_SPAWNER: `process` (a child process, the default), `bwrap` (the
same inside bubblewrap), `docker` (a container through the docker SDK) or `kubernetes`
(a batch/v1 Job per worker, through kubernetes_asyncio). All four keep the `Spawner` contract in `base`: spawn, alive, watch (adopt after a restart),
stop, and report ends on the `exits` queue.
"""

from __future__ import annotations

from ai_factory.core.settings import Settings
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners.base import (
    Spawner,
    SpawnError,
    WorkerExit,
    WorkerHandle,
    WorkerLaunch,
    container_env,
    worker_api_url,
    worker_env,
)
from ai_factory.orchestrator.spawners.bwrap import BwrapSpawner
from ai_factory.orchestrator.spawners.process import ProcessSpawner


def build_spawner(settings: Settings, *, logs: WorkerLogs) -> Spawner:
    """The spawner FACTORY_SPAWNER names (no I/O: `check()` is done at start-up)."""
    if settings.factory_spawner == "docker":
        from ai_factory.orchestrator.spawners.docker import DockerSpawner  # the SDK is heavy

        return DockerSpawner(settings=settings, logs=logs)
    if settings.factory_spawner == "kubernetes":
        from ai_factory.orchestrator.spawners.kubernetes import KubernetesSpawner  # the client too

        return KubernetesSpawner(settings=settings, logs=logs)
    if settings.factory_spawner == "bwrap":
        return BwrapSpawner(settings=settings, logs=logs)
    return ProcessSpawner(settings=settings, logs=logs)


__all__ = [
    "BwrapSpawner",
    "ProcessSpawner",
    "SpawnError",
    "Spawner",
    "WorkerExit",
    "WorkerHandle",
    "WorkerLaunch",
    "build_spawner",
    "container_env",
    "worker_api_url",
    "worker_env",
]

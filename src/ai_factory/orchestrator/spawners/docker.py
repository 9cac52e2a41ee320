"""The `docker` spawner: each worker is a container, through the `docker` SDK.

Each container runs FACTORY_WORKER_IMAGE with host networking (so ORCHESTRATOR_URL
means inside what it means on the host, loopback included) and AutoRemove (a
finished worker leaves no container behind), with the worker's identity in its
environment (WORKER_ID, WORKER_TOKEN, WORK_ITEM, ORCHESTRATOR_URL, GITHUB_TOKEN ...).
Any Docker-compatible engine works (DOCKER_HOST), podman's included. A thread per
container copies its output into the item's log and another waits for its exit
code; both end when the container does. The SDK is blocking, so every call runs in
a thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tarfile
import threading
import time
from typing import Any
from uuid import UUID

import docker.errors
import requests.exceptions

import docker
from ai_factory.core.errors import ConfigError
from ai_factory.core.launch_secrets import SECRETS_FILE_VAR, encode
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners.base import (
    SpawnError,
    WorkerExit,
    WorkerHandle,
    WorkerLaunch,
    container_env,
    log_header,
    worker_secrets,
)

log = logging.getLogger(__name__)

DRIVER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
SECRETS_DIR = "/tmp/factory-secrets"
SECRETS_NAME = "secrets.json"


def secrets_archive(secrets: dict[str, str]) -> bytes:
    """A tar of `factory-secrets/secrets.json` for the container's /tmp. The folder is open to
    the worker's user (whoever the image runs as) so that it can remove the file at start,
    before any agent runs."""
    data = encode(secrets)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("factory-secrets")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o777
        tar.addfile(folder)
        entry = tarfile.TarInfo(f"factory-secrets/{SECRETS_NAME}")
        entry.size, entry.mode = len(data), 0o644
        tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()
LOG_JOIN_S = 5.0


def _is_gone(exc: Exception) -> bool:
    """A container removed while we asked: Docker says 404, Podman may say 500 "no such
    container"."""
    if isinstance(exc, docker.errors.NotFound):
        return True
    return isinstance(exc, docker.errors.APIError) and (
        "no such container" in str(exc.explanation or exc).lower()
    )


class DockerSpawner:
    name = "docker"

    def __init__(self, *, settings: Settings, logs: WorkerLogs, network_mode: str = "host") -> None:
        self.settings = settings
        self.logs = logs
        self.image = settings.factory_worker_image
        self.command = settings.worker_command  # None: the image's own entry point
        self.network_mode = network_mode
        self.volumes = self._volumes(settings.factory_worker_mounts)
        self.exits: asyncio.Queue[WorkerExit] = asyncio.Queue()
        self._client: Any = None
        self._handles: dict[UUID, WorkerHandle] = {}

    async def check(self) -> None:
        try:
            client = await self._docker()
            await asyncio.to_thread(client.ping)
        except (SpawnError, *DRIVER_ERRORS) as exc:
            raise ConfigError(f"FACTORY_SPAWNER: docker engine unreachable (DOCKER_HOST): {exc}") from exc
        try:
            await asyncio.to_thread(client.images.get, self.image)
        except docker.errors.ImageNotFound:
            raise ConfigError(
                f"FACTORY_WORKER_IMAGE: image {self.image!r} not found"
                " (build it: docker build -f docker/Dockerfile -t factory-worker:latest .)"
            ) from None
        except DRIVER_ERRORS as exc:
            raise ConfigError(f"FACTORY_SPAWNER: docker engine error: {exc}") from exc

    async def spawn(self, launch: WorkerLaunch) -> WorkerHandle:
        client = await self._docker()
        fd = self.logs.open_append(launch.item.id, log_header(launch, f"docker {self.image}"))
        environment = container_env(launch, settings=self.settings)
        environment[SECRETS_FILE_VAR] = f"{SECRETS_DIR}/{SECRETS_NAME}"
        secrets = secrets_archive(worker_secrets(launch, settings=self.settings))
        try:
            container = await asyncio.to_thread(
                client.containers.create,
                self.image,
                self.command,
                auto_remove=True,
                environment=environment,
                network_mode=self.network_mode,
                volumes=self.volumes,
                name=f"factory-worker-{launch.worker_id}",
                labels={"ai-factory.worker": str(launch.worker_id), "ai-factory.item": str(launch.item.id)},
            )
            # The secrets go in as a file before the worker starts, never into its environment.
            await asyncio.to_thread(container.put_archive, "/tmp", secrets)
            await asyncio.to_thread(container.start)
        except DRIVER_ERRORS as exc:
            os.write(fd, f"cannot start container: {exc}\n".encode())
            raise SpawnError(f"cannot start worker container from {self.image!r}: {exc}") from exc
        finally:
            os.close(fd)
        handle = WorkerHandle(
            worker_id=launch.worker_id,
            spawner=self.name,
            work_item_id=launch.item.id,
            container_id=container.id,
        )
        self._follow(handle, since=None)
        return handle

    def can_check(self, handle: WorkerHandle) -> bool:
        return bool(handle.container_id)

    async def alive(self, handle: WorkerHandle) -> bool:
        if not handle.container_id:
            return False
        try:
            client = await self._docker()
            container = await asyncio.to_thread(client.containers.get, handle.container_id)
        except (SpawnError, *DRIVER_ERRORS) as exc:
            if _is_gone(exc):
                return False
            # The engine is unreachable: we cannot tell, so do not declare the worker dead;
            # its heartbeats decide.
            log.warning("docker.unreachable container=%s error=%s", handle.container_id[:12], exc)
            return True
        return container.status in ("created", "running", "restarting", "paused")

    async def watch(self, handle: WorkerHandle) -> bool:
        if handle.worker_id in self._handles:
            return True
        if not await self.alive(handle):
            return False
        self._follow(handle, since=int(time.time()))
        return True

    async def stop(self, handle: WorkerHandle, *, grace_s: float) -> None:
        if not handle.container_id:
            return
        try:
            client = await self._docker()
            container = await asyncio.to_thread(client.containers.get, handle.container_id)
            await asyncio.to_thread(container.stop, timeout=max(0, int(grace_s)))
        except DRIVER_ERRORS as exc:
            if not _is_gone(exc):
                log.warning("worker.stop_failed worker=%s error=%s", handle.worker_id, exc)

    def tracked(self) -> list[WorkerHandle]:
        return list(self._handles.values())

    async def close(self) -> None:
        self._handles.clear()  # follower threads are daemons and end with their containers
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None

    # --- helpers ---

    async def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = await asyncio.to_thread(docker.from_env)
            except DRIVER_ERRORS as exc:
                raise SpawnError(f"cannot reach the docker engine: {exc}") from exc
        return self._client

    def _follow(self, handle: WorkerHandle, *, since: int | None) -> None:
        self._handles[handle.worker_id] = handle
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._supervise, args=(handle, since, loop), daemon=True, name=f"docker-{handle.worker_id}"
        ).start()

    def _supervise(self, handle: WorkerHandle, since: int | None, loop: asyncio.AbstractEventLoop) -> None:
        copier = threading.Thread(target=self._copy_logs, args=(handle, since), daemon=True)
        copier.start()
        code: int | None = None
        try:
            container = self._client.containers.get(handle.container_id)
            code = container.wait().get("StatusCode")
        except DRIVER_ERRORS as exc:
            # Already gone (AutoRemove) is no failure: the exit code went with it.
            if not _is_gone(exc):
                log.warning("worker.wait_failed worker=%s error=%s", handle.worker_id, exc)
        copier.join(LOG_JOIN_S)
        try:
            loop.call_soon_threadsafe(self._report, handle, code)
        except RuntimeError:
            pass  # the orchestrator's loop is gone; the next one finds the end by itself

    def _copy_logs(self, handle: WorkerHandle, since: int | None) -> None:
        if handle.work_item_id is None:
            return
        try:
            container = self._client.containers.get(handle.container_id)
            stream = container.logs(stream=True, follow=True, since=since)
            with self.logs.path(handle.work_item_id).open("ab") as out:
                for chunk in stream:
                    out.write(chunk)
                    out.flush()
        except DRIVER_ERRORS:
            pass  # the container went away while we read; what was copied stays

    def _report(self, handle: WorkerHandle, code: int | None) -> None:
        self._handles.pop(handle.worker_id, None)
        log.info("worker.exited worker=%s %s code=%s", handle.worker_id, handle.describe(), code)
        self.exits.put_nowait(WorkerExit(worker_id=handle.worker_id, exit_code=code))

    @staticmethod
    def _volumes(mounts: list[str]) -> dict[str, dict[str, str]]:
        volumes = {}
        for mount in mounts:
            host, bind, *mode = mount.split(":")
            volumes[host] = {"bind": bind, "mode": mode[0] if mode else "rw"}
        return volumes

"""The `kubernetes` spawner: each worker is a batch/v1 Job, through `kubernetes_asyncio`.

One Job per worker, named ``factory-worker-<worker id>``, in FACTORY_K8S_NAMESPACE, from
FACTORY_WORKER_IMAGE: one pod, ``restartPolicy: Never``, ``backoffLimit: 0`` (a crashed
worker is the orchestrator's to retry, with a fresh lease), ``activeDeadlineSeconds`` from
the item's wall-clock cap (`Settings.k8s_deadline_seconds`), ``ttlSecondsAfterFinished``
(FACTORY_K8S_TTL_SECONDS), requests and limits from FACTORY_K8S_REQUESTS/LIMITS, the service
account FACTORY_K8S_SERVICE_ACCOUNT (it needs no API permission, and no token is mounted),
and FACTORY_HOME on an emptyDir, or on the claim FACTORY_K8S_HOME_CLAIM. Labels tie Job and
pod to the factory (``app.kubernetes.io/managed-by: ai-factory``), the worker
(``ai-factory.dev/worker``) and the item (``ai-factory.dev/item``).

What the worker's container gets (the contract with `factory worker`):

- environment: WORKER_ID, WORK_ITEM, ORCHESTRATOR_URL, HEARTBEAT_INTERVAL_SECONDS,
  FACTORY_HOME=/data and the worker settings the orchestrator was given (`container_env`),
  never a secret's value;
- CLAUDE_CODE_OAUTH_TOKEN and ANTHROPIC_API_KEY from the Secret FACTORY_K8S_SECRET by
  ``secretKeyRef`` (each key optional), as the agent needs its login in its environment;
- FACTORY_SECRETS_FILE=/var/run/ai-factory/secrets.json: a JSON object
  ``{"WORKER_TOKEN": "...", "GITHUB_TOKEN": "..."}`` (GITHUB_TOKEN only when the orchestrator
  has one), from the worker's own Secret ``factory-worker-<worker id>`` (key
  ``secrets.json``). The Secret is mounted only in the init container ``secrets``, which
  copies the file into a memory-backed emptyDir that the worker's container mounts writable,
  so that `core.launch_secrets.read_launch_secrets` can delete it once read and the agent,
  running as the same user, never finds it. The Secret is created right after the Job with
  an ownerReference to it, so Kubernetes deletes it with the Job; the pod waits for it to
  exist before it starts.

The spawner watches its Jobs (one list, then a watch from its resourceVersion; a watch that
ends is resumed, one the server has expired (410 Gone) starts over with a new list), reports
a Job that finished or disappeared on `exits` with its pod's exit code, and copies each
pod's log into the item's log. `stop` deletes the Job with foreground propagation and waits
until it is gone (its pod has stopped); `watch` adopts a running Job after an orchestrator
restart and deletes a finished one. The client is imported only when this spawner is chosen;
the manifests themselves are built in `kubernetes_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch
from kubernetes_asyncio.client.exceptions import ApiException

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners.base import (
    SpawnError,
    WorkerExit,
    WorkerHandle,
    WorkerLaunch,
    log_header,
)
from ai_factory.orchestrator.spawners.kubernetes_job import (
    SELECTOR,
    TERMINATION_GRACE_S,
    WORKER_LABEL,
    exit_code,
    finished,
    job_manifest,
    job_name,
    secret_manifest,
)

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300  # the server ends a watch after this; it is resumed at once
REQUEST_TIMEOUT_S = 10  # a call to an API that does not answer is an error, not a hang
RETRY_S = 2.0  # after an API error in the watch loop
POLL_S = 0.5
LOG_JOIN_S = 5.0
DRIVER_ERRORS = (ApiException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
WAITING_REASONS = {  # a pod that will not start by itself: said in the item's log
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
    "CreateContainerError",
}  # fmt: skip


async def raw(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The call's unparsed response (no model objects: the spawner reads plain JSON); unlike
    a parsed call, an error status must be raised here."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
    response = await call(*args, _preload_content=False, **kwargs)
    if response.status >= 400:
        body = await response.read()
        response.release()
        raise ApiException(status=response.status, reason=body.decode(errors="replace")[:500])
    return response


async def raw_json(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = await raw(call, *args, **kwargs)
    try:
        return json.loads(await response.read())
    finally:
        response.release()


async def load_api_config() -> k8s.Configuration:
    """In-cluster config inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = k8s.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            # read KUBECONFIG now: the client's default was fixed when it was imported
            config_file = os.environ.get("KUBECONFIG") or "~/.kube/config"
            paths = [Path(p).expanduser() for p in config_file.split(os.pathsep) if p]
            if not any(path.exists() for path in paths):
                raise ConfigError(
                    "FACTORY_SPAWNER: not in a Kubernetes pod, and no kubeconfig at"
                    f" {config_file} (set KUBECONFIG)"
                )
            await k8s_config.load_kube_config(
                config_file=config_file, client_configuration=configuration
            )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            f"FACTORY_SPAWNER: no Kubernetes configuration (KUBECONFIG): {exc}"
        ) from exc
    return configuration


class KubernetesSpawner:
    name = "kubernetes"

    def __init__(self, *, settings: Settings, logs: WorkerLogs) -> None:
        self.settings = settings
        self.logs = logs
        self.namespace = settings.factory_k8s_namespace
        self.exits: asyncio.Queue[WorkerExit] = asyncio.Queue()
        self._api: k8s.ApiClient | None = None
        self._handles: dict[UUID, WorkerHandle] = {}
        self._since: dict[UUID, float] = {}  # when each was tracked (a list older says nothing)
        self._ending: set[UUID] = set()
        self._followers: dict[UUID, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None

    async def check(self) -> None:
        try:
            batch = k8s.BatchV1Api(await self._client())
            await batch.list_namespaced_job(
                self.namespace, limit=1, label_selector=SELECTOR, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            raise ConfigError(
                f"FACTORY_SPAWNER: kubernetes refuses to list Jobs in namespace {self.namespace!r}"
                f" (FACTORY_K8S_NAMESPACE; the orchestrator's Role): {exc.status} {exc.reason}"
            ) from exc
        except DRIVER_ERRORS as exc:
            raise ConfigError(f"FACTORY_SPAWNER: Kubernetes API unreachable: {exc}") from exc

    async def spawn(self, launch: WorkerLaunch) -> WorkerHandle:
        name = job_name(launch.worker_id)
        fd = self.logs.open_append(
            launch.item.id, log_header(launch, f"kubernetes job {self.namespace}/{name}")
        )
        try:
            api = await self._client()
            batch, core = k8s.BatchV1Api(api), k8s.CoreV1Api(api)
            job = await batch.create_namespaced_job(
                self.namespace,
                job_manifest(launch, settings=self.settings),
                _request_timeout=REQUEST_TIMEOUT_S,
            )
            try:
                await core.create_namespaced_secret(
                    self.namespace,
                    secret_manifest(launch, settings=self.settings, job_uid=job.metadata.uid),
                    _request_timeout=REQUEST_TIMEOUT_S,
                )
            except DRIVER_ERRORS:
                with contextlib.suppress(*DRIVER_ERRORS):
                    await batch.delete_namespaced_job(
                        name,
                        self.namespace,
                        propagation_policy="Background",
                        _request_timeout=REQUEST_TIMEOUT_S,
                    )
                raise
        except (ConfigError, *DRIVER_ERRORS) as exc:
            detail = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
            os.write(fd, f"cannot create the worker's Job: {detail}\n".encode())
            raise SpawnError(f"cannot create the worker's Job {name}: {detail}") from exc
        finally:
            os.close(fd)
        handle = WorkerHandle(
            worker_id=launch.worker_id,
            spawner=self.name,
            work_item_id=launch.item.id,
            container_id=f"{self.namespace}/{name}",
        )
        self._track(handle, since_s=None)
        return handle

    def can_check(self, handle: WorkerHandle) -> bool:
        return handle.container_id.startswith(f"{self.namespace}/")

    async def alive(self, handle: WorkerHandle) -> bool:
        if not self.can_check(handle):
            return False
        try:
            job = await self._read_job(handle)
        except DRIVER_ERRORS as exc:
            # The API cannot be reached: we cannot tell, so do not declare the worker dead;
            # its heartbeats decide.
            log.warning("kubernetes.unreachable job=%s error=%s", handle.container_id, exc)
            return True
        return job is not None and not finished(job)

    async def watch(self, handle: WorkerHandle) -> bool:
        if handle.worker_id in self._handles:
            return True
        if not self.can_check(handle):
            return False
        try:
            job = await self._read_job(handle)
        except DRIVER_ERRORS as exc:
            log.warning("kubernetes.unreachable job=%s error=%s", handle.container_id, exc)
            return False
        if job is None:
            return False
        if finished(job):  # ended while no orchestrator watched: clean it up now
            await self._delete_job(handle, policy="Background")
            return False
        self._track(handle, since_s=time.time())
        return True

    async def stop(self, handle: WorkerHandle, *, grace_s: float) -> None:
        if not self.can_check(handle):
            return
        # Foreground: the Job stays (with a deletionTimestamp) until its pod is gone, so a
        # vanished Job means a stopped worker.
        await self._delete_job(handle, policy="Foreground")
        deadline = time.monotonic() + grace_s + TERMINATION_GRACE_S + 30
        while time.monotonic() < deadline:
            try:
                if await self._read_job(handle) is None:
                    return
            except DRIVER_ERRORS as exc:
                log.warning("worker.stop_failed worker=%s error=%s", handle.worker_id, exc)
                return
            await asyncio.sleep(POLL_S)
        log.warning(
            "worker.stop_slow worker=%s job=%s still there", handle.worker_id, handle.container_id
        )

    def tracked(self) -> list[WorkerHandle]:
        return list(self._handles.values())

    async def close(self) -> None:
        tasks = [*self._tasks, *self._followers.values()]
        if self._watcher is not None:
            tasks.append(self._watcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watcher = None
        self._tasks.clear()
        self._followers.clear()
        self._handles.clear()
        if self._api is not None:
            await self._api.close()
            self._api = None

    # --- helpers ---

    async def _client(self) -> k8s.ApiClient:
        if self._api is None:
            self._api = k8s.ApiClient(await load_api_config())
        return self._api

    @staticmethod
    def _name(handle: WorkerHandle) -> str:
        return handle.container_id.split("/", 1)[1]

    async def _read_job(self, handle: WorkerHandle) -> dict[str, Any] | None:
        batch = k8s.BatchV1Api(await self._client())
        try:
            return await raw_json(batch.read_namespaced_job, self._name(handle), self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _delete_job(self, handle: WorkerHandle, *, policy: str) -> None:
        try:
            batch = k8s.BatchV1Api(await self._client())
            await batch.delete_namespaced_job(
                self._name(handle),
                self.namespace,
                propagation_policy=policy,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except DRIVER_ERRORS as exc:
            if not (isinstance(exc, ApiException) and exc.status == 404):
                log.warning("worker.stop_failed worker=%s error=%s", handle.worker_id, exc)

    async def _pods(self, worker_id: UUID) -> list[dict[str, Any]]:
        core = k8s.CoreV1Api(await self._client())
        pods = await raw_json(
            core.list_namespaced_pod, self.namespace, label_selector=f"{WORKER_LABEL}={worker_id}"
        )
        return pods.get("items") or []

    def _track(self, handle: WorkerHandle, *, since_s: float | None) -> None:
        self._handles[handle.worker_id] = handle
        self._since[handle.worker_id] = time.monotonic()
        self._followers[handle.worker_id] = asyncio.create_task(
            self._copy_logs(handle, since_s), name=f"k8s-logs-{handle.worker_id}"
        )
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_jobs(), name="k8s-watch-jobs")

    async def _watch_jobs(self) -> None:
        """List, then watch from the list's resourceVersion; resume a watch that ended,
        list again when the server says the version has expired (410 Gone)."""
        version: str | None = None
        while True:
            try:
                batch = k8s.BatchV1Api(await self._client())
                if version is None:
                    listed_at = time.monotonic()
                    listing = await raw_json(
                        batch.list_namespaced_job, self.namespace, label_selector=SELECTOR
                    )
                    version = listing["metadata"]["resourceVersion"]
                    self._saw_list(listing.get("items") or [], listed_at)
                async with k8s_watch.Watch(return_type="object") as stream:
                    async for event in stream.stream(
                        batch.list_namespaced_job,
                        self.namespace,
                        label_selector=SELECTOR,
                        resource_version=version,
                        timeout_seconds=WATCH_TIMEOUT_S,
                        allow_watch_bookmarks=True,
                        _request_timeout=WATCH_TIMEOUT_S + REQUEST_TIMEOUT_S,
                    ):
                        version = stream.resource_version or version
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._saw(event["raw_object"], gone=event["type"] == "DELETED")
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if exc.status == 410:
                    log.info("kubernetes.watch_expired listing again")
                    version = None
                    continue
                log.warning("kubernetes.watch_failed status=%s reason=%s", exc.status, exc.reason)
                await asyncio.sleep(RETRY_S)
            except DRIVER_ERRORS as exc:
                log.warning("kubernetes.watch_failed error=%s", exc)
                await asyncio.sleep(RETRY_S)

    def _saw_list(self, jobs: list[dict[str, Any]], listed_at: float) -> None:
        present = set()
        for job in jobs:
            present.add(self._saw(job, gone=False))
        for worker_id, since in list(self._since.items()):
            # A Job tracked before this list was asked for and absent from it is gone.
            if worker_id not in present and since < listed_at and worker_id in self._handles:
                self._end(self._handles[worker_id])

    def _saw(self, job: dict[str, Any], *, gone: bool) -> UUID | None:
        try:
            worker_id = UUID(
                ((job.get("metadata") or {}).get("labels") or {}).get(WORKER_LABEL, "")
            )
        except ValueError:
            return None
        handle = self._handles.get(worker_id)
        if handle is not None and (gone or finished(job)):
            self._end(handle)
        return worker_id

    def _end(self, handle: WorkerHandle) -> None:
        if handle.worker_id in self._ending:
            return
        self._ending.add(handle.worker_id)
        task = asyncio.create_task(self._report(handle), name=f"k8s-exit-{handle.worker_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, handle: WorkerHandle) -> None:
        code = None
        with contextlib.suppress(*DRIVER_ERRORS):
            code = exit_code(await self._pods(handle.worker_id))
        follower = self._followers.pop(handle.worker_id, None)
        if follower is not None:
            await asyncio.wait({follower}, timeout=LOG_JOIN_S)  # keeps a cancel of this one
            follower.cancel()
            if follower.done() and not follower.cancelled() and follower.exception():
                log.warning("worker.log_follow_failed worker=%s", handle.worker_id)
        self._handles.pop(handle.worker_id, None)
        self._since.pop(handle.worker_id, None)
        self._ending.discard(handle.worker_id)
        log.info("worker.exited worker=%s %s code=%s", handle.worker_id, handle.container_id, code)
        self.exits.put_nowait(WorkerExit(worker_id=handle.worker_id, exit_code=code))

    async def _copy_logs(self, handle: WorkerHandle, since_s: float | None) -> None:
        """Wait for the worker's pod to start, then copy its log into the item's log."""
        if handle.work_item_id is None:
            return
        said: set[str] = set()
        try:
            pod = None
            while pod is None and handle.worker_id in self._handles:
                for candidate in await self._pods(handle.worker_id):
                    status = candidate.get("status") or {}
                    if status.get("phase") in ("Running", "Succeeded", "Failed"):
                        pod = candidate
                    for container in status.get("containerStatuses") or []:
                        waiting = (container.get("state") or {}).get("waiting") or {}
                        if waiting.get("reason") in WAITING_REASONS - said:
                            said.add(waiting["reason"])
                            self._append(
                                handle,
                                f"pod waiting: {waiting['reason']}: {waiting.get('message', '')}",
                            )
                if pod is None:
                    await asyncio.sleep(POLL_S)
            if pod is None:
                return
            core = k8s.CoreV1Api(await self._client())
            extra = (
                {} if since_s is None else {"since_seconds": max(1, int(time.time() - since_s) + 1)}
            )
            response = await raw(
                core.read_namespaced_pod_log,
                pod["metadata"]["name"],
                self.namespace,
                follow=True,
                # a log may be silent for long: only connecting is timed
                _request_timeout=aiohttp.ClientTimeout(sock_connect=REQUEST_TIMEOUT_S),
                **extra,
            )
            try:
                with self.logs.path(handle.work_item_id).open("ab") as out:
                    async for chunk in response.content.iter_any():
                        out.write(chunk)
                        out.flush()
            finally:
                response.release()
        except DRIVER_ERRORS as exc:
            log.debug("kubernetes.log_copy_ended worker=%s error=%s", handle.worker_id, exc)

    def _append(self, handle: WorkerHandle, line: str) -> None:
        assert handle.work_item_id is not None
        with self.logs.path(handle.work_item_id).open("ab") as out:
            out.write(line.encode() + b"\n")

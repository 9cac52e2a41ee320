"""A stateful fake Kubernetes: API server, Job controller, garbage collector and kubelet.

No API server installs here (none of kube-apiserver, kind, k3s, kwok or envtest is on
PyPI or Debian), and `kmock`, the stateful fake on PyPI, serves objects without what the
kubernetes spawner relies on: resourceVersions, label selectors, watches resumed from a
version (and 410 Gone once it has expired), subresources (pod logs), deletion with
propagation through ownerReferences, and a controller that runs a Job's pod
(docs/design.md#kubernetes-jobs-for-workers). This fake does those things the way the
API's documentation describes them, for the three resources the spawner touches:

- objects get a uid, a creationTimestamp and a resourceVersion from one counter; lists carry
  the collection's version; ``labelSelector`` takes equality, inequality and existence terms;
- a watch streams events after its ``resourceVersion`` (all objects as ADDED without one),
  ends after ``timeoutSeconds``, and answers an ERROR event with code 410 when the version
  is older than the history kept (`compact()` forgets the history and ends every watch, as an
  API server restart does);
- delete follows ``propagationPolicy`` (Foreground: the owner stays with a deletionTimestamp
  until its dependents are gone; Background: dependents go after it; Orphan, the API's
  default for Jobs: they stay), and a pod's deletion gives its process
  ``terminationGracePeriodSeconds`` between SIGTERM and SIGKILL;
- the Job controller creates the one pod, fails the Job at ``activeDeadlineSeconds``
  (DeadlineExceeded), marks it Complete or Failed when its pod ends, and deletes it
  ``ttlSecondsAfterFinished`` later;
- the kubelet runs the pod's init containers, one after the other, then its container, each
  as a local process: command and args (or the entry point registered for its image), env
  with ``secretKeyRef`` resolved (a missing required Secret key keeps it waiting:
  CreateContainerConfigError), Secret volumes (it waits for the Secret, as a kubelet does),
  emptyDir and claims as local folders. A path in the env or the argv under one of the
  container's mount paths is rewritten to that local folder: the one liberty taken, since a
  local process cannot see the container's file system. The image's user, the service
  account and the network policy are not enforced.

PATH, HOME and the fake worker's knobs (FAKE_WORKER_*) reach the pod as if its image set them.
The Job controller and the kubelet are in `fake_kubernetes_nodes`. `FakeKubernetes` runs on
its own thread and event loop, so it outlives any orchestrator a
test starts and stops; `write_kubeconfig()` points a client at it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.fake_kubernetes_nodes import Nodes, RunningPod, now_iso

RESOURCES = {  # (group/version, plural) -> kind
    ("batch/v1", "jobs"): "Job",
    ("v1", "pods"): "Pod",
    ("v1", "secrets"): "Secret",
}
PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+/[^/]+))/namespaces/(?P<ns>[^/]+)/"
    r"(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)
HISTORY = 10_000


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return web.json_response(body, status=code)


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge(target: dict, patch: dict) -> dict:
    """JSON merge patch (RFC 7386)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


@dataclass
class Event:
    version: int
    type: str
    kind: str
    namespace: str
    obj: dict[str, Any]


class FakeKubernetes(Nodes):
    def __init__(self, workdir: Path, *, images: dict[str, list[str]] | None = None,
                 base_env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.workdir = workdir
        self.images = images or {}  # image -> entry point, for containers without a command
        self.base_env = (
            base_env  # what the image would set; None: PATH, HOME, FAKE_WORKER_* from here
        )
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.version = 1
        self.history: list[Event] = []
        self.oldest = 1  # watches from before this version get 410 Gone
        self.requests: list[tuple[str, str]] = []
        self.pods: dict[str, RunningPod] = {}
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # set, and replaced, at every change
        self._epoch = 0  # bumped by compact(): open watches end
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self.closing = False

    # --- running it ---

    def start(self) -> FakeKubernetes:
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-kubernetes")
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the fake Kubernetes API did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._started.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (a coroutine function or a plain one) on the fake's loop, return its result."""
        assert self._loop is not None

        async def run() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(60)

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            self._epoch += 1  # open watches and log streams end
            self.closing = True
            await self._notify()
            for pod in self.pods.values():
                if pod.process is not None and pod.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pod.process.pid, signal.SIGKILL)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                      "namespace": namespace}}],
        }  # fmt: skip
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    # --- what tests look at or do ---

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.call(lambda: copy.deepcopy(self.objects.get((kind, namespace, name))))

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        def pick() -> list[dict[str, Any]]:
            return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                    if k == kind and ns == namespace
                    and selector_matches(selector, o["metadata"].get("labels") or {})]  # fmt: skip

        return self.call(pick)

    def put_secret(self, namespace: str, name: str, values: dict[str, str]) -> None:
        """Create a Secret, as `kubectl create secret generic NAME --from-literal ...` does."""
        secret = {"metadata": {"name": name}, "type": "Opaque", "stringData": dict(values)}
        self.call(lambda: self._create("Secret", namespace, secret, "v1"))

    def compact(self) -> None:
        """Forget the event history and end every open watch (an API server restart)."""

        async def forget() -> None:
            self.history.clear()
            self.oldest = self.version + 1
            self._epoch += 1
            await self._notify()

        self.call(forget)

    # --- the API ---

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.path == "/version":
            return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"})
        match = PATH.match(request.path)
        if match is None:
            return status(404, "NotFound", f"the server could not find {request.path}")
        group = match["core"] or match["group"]
        kind = RESOURCES.get((group, match["plural"]))
        if kind is None:
            return status(404, "NotFound", f"no resource {match['plural']} in {group}")
        ns, name, sub = match["ns"], match["name"], match["sub"]
        query = request.query
        if name is None:
            if request.method == "GET" and query.get("watch", "").lower() in ("true", "1"):
                return await self._watch(request, kind, ns)
            if request.method == "GET":
                return self._list(kind, ns, query.get("labelSelector", ""))
            if request.method == "POST":
                return await self._create(kind, ns, await request.json(), group)
        elif sub is None:
            if request.method == "GET":
                obj = self.objects.get((kind, ns, name))
                return web.json_response(obj) if obj else self._not_found(kind, name)
            if request.method == "DELETE":
                body = await request.json() if request.can_read_body else {}
                policy = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
                grace = query.get("gracePeriodSeconds") or (body or {}).get("gracePeriodSeconds")
                return await self._delete(kind, ns, name, policy, grace)
            if request.method == "PATCH":
                obj = self.objects.get((kind, ns, name))
                if obj is None:
                    return self._not_found(kind, name)
                await self._update(kind, merge(obj, await request.json()))
                return web.json_response(obj)
        elif kind == "Pod" and sub == "log" and request.method == "GET":
            return await self._log(request, ns, name)
        return status(405, "MethodNotAllowed", f"{request.method} {request.path}")

    def _not_found(self, kind: str, name: str) -> web.Response:
        plural = {"Job": "jobs.batch", "Pod": "pods", "Secret": "secrets"}[kind]
        return status(404, "NotFound", f'{plural} "{name}" not found')

    def _list(self, kind: str, ns: str, selector: str) -> web.Response:
        items = [o for (k, n, _), o in self.objects.items() if k == kind and n == ns
                 and selector_matches(selector, o["metadata"].get("labels") or {})]  # fmt: skip
        return web.json_response({"kind": f"{kind}List", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": str(self.version)}, "items": items})  # fmt: skip

    async def _watch(self, request: web.Request, kind: str, ns: str) -> web.StreamResponse:
        assert self._changed is not None
        selector = request.query.get("labelSelector", "")
        since = request.query.get("resourceVersion", "")
        timeout = float(request.query.get("timeoutSeconds", "1800"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)

        def matches(event: Event) -> bool:
            labels = event.obj["metadata"].get("labels") or {}
            return (
                event.kind == kind and event.namespace == ns and selector_matches(selector, labels)
            )

        async def send(kind_: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": kind_, "object": obj}).encode() + b"\n")

        if since in ("", "0"):
            position = self.version
            for (k, n, _), obj in list(self.objects.items()):
                if (
                    k == kind
                    and n == ns
                    and selector_matches(selector, obj["metadata"].get("labels") or {})
                ):
                    await send("ADDED", obj)
        else:
            position = int(since)
            if position < self.oldest - 1:
                gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                        "reason": "Expired", "message": f"too old resource version: {since}"}  # fmt: skip
                await send("ERROR", gone)
                return response
        epoch = self._epoch
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and epoch == self._epoch:
            for event in [e for e in self.history if e.version > position]:
                position = event.version
                if matches(event):
                    await send(event.type, event.obj)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
        return response

    async def _notify(self) -> None:
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    async def _record(self, type_: str, kind: str, obj: dict[str, Any]) -> None:
        self.version += 1
        if type_ != "DELETED":
            obj["metadata"]["resourceVersion"] = str(self.version)
        self.history.append(
            Event(self.version, type_, kind, obj["metadata"]["namespace"], copy.deepcopy(obj))
        )
        if len(self.history) > HISTORY:
            dropped = self.history.pop(0)
            self.oldest = dropped.version + 1
        await self._notify()

    async def _create(self, kind: str, ns: str, obj: dict[str, Any], group: str) -> web.Response:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return status(422, "Invalid", "metadata.name: Required value")
        if (kind, ns, name) in self.objects:
            return status(409, "AlreadyExists", f'{kind.lower()}s "{name}" already exists')
        if kind == "Secret":
            data = obj.setdefault("data", {})
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(value.encode()).decode()
            try:
                for value in data.values():
                    base64.b64decode(value, validate=True)
            except ValueError:
                return status(422, "Invalid", "data: illegal base64 data")
        obj.update({"apiVersion": group, "kind": kind})
        meta.update({"namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now_iso()})
        self.objects[(kind, ns, name)] = obj
        await self._record("ADDED", kind, obj)
        if kind == "Job":
            obj["status"] = {}
            self._spawn(self._run_job(ns, name))
        elif kind == "Pod":
            obj["status"] = {"phase": "Pending"}
            self._spawn(self._kubelet(ns, name))
        return web.json_response(obj, status=201)

    async def _update(self, kind: str, obj: dict[str, Any]) -> None:
        await self._record("MODIFIED", kind, obj)

    async def _remove(self, kind: str, ns: str, name: str) -> None:
        obj = self.objects.pop((kind, ns, name), None)
        if obj is not None:
            await self._record("DELETED", kind, obj)
            self._spawn(self._collect(obj["metadata"]["uid"], ns, "Background"))

    def _dependents(self, uid: str, ns: str) -> list[tuple[str, str, str]]:
        return [key for key, o in self.objects.items() if key[1] == ns
                and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]  # fmt: skip

    async def _delete(
        self, kind: str, ns: str, name: str, policy: str | None, grace: Any
    ) -> web.Response:
        obj = self.objects.get((kind, ns, name))
        if obj is None:
            return self._not_found(kind, name)
        policy = policy or ("Orphan" if kind == "Job" else "Background")
        meta = obj["metadata"]
        if kind == "Pod":
            seconds = int(
                grace if grace is not None else obj["spec"].get("terminationGracePeriodSeconds", 30)
            )
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_iso()
                await self._update(kind, obj)
                self._spawn(self._terminate(ns, name, seconds))
            return web.json_response(obj)
        if policy == "Foreground" and self._dependents(meta["uid"], ns):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_iso()
                meta["finalizers"] = ["foregroundDeletion"]
                await self._update(kind, obj)
                self._spawn(self._foreground(kind, ns, name, meta["uid"]))
            return web.json_response(obj)
        if policy == "Orphan":
            self.objects.pop((kind, ns, name))
            await self._record("DELETED", kind, obj)
            return web.json_response(obj)
        await self._remove(kind, ns, name)
        return web.json_response(obj)

    async def _foreground(self, kind: str, ns: str, name: str, uid: str) -> None:
        await self._collect(uid, ns, "Foreground")
        while self._dependents(uid, ns):
            await asyncio.sleep(0.05)
        await self._remove(kind, ns, name)

    async def _collect(self, uid: str, ns: str, policy: str) -> None:
        """The garbage collector: delete what `uid` owned."""
        for kind, _, name in self._dependents(uid, ns):
            await self._delete(kind, ns, name, policy, None)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = self.objects.get(("Pod", ns, name))
        if pod is None:
            return self._not_found("Pod", name)
        running = self.pods.get(name)
        if running is None or running.process is None:
            return status(
                400, "BadRequest", f'container "worker" in pod "{name}" is waiting to start'
            )
        since = request.query.get("sinceSeconds")
        cutoff = time.time() - int(since) if since else 0.0
        follow = request.query.get("follow", "").lower() in ("true", "1")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        position = 0
        while True:
            for stamp, chunk in running.log[position:]:
                if stamp >= cutoff:
                    await response.write(chunk)
            position = len(running.log)
            if not follow or (running.process.returncode is not None and position == len(running.log)
                              and running.done.is_set()) or ("Pod", ns, name) not in self.objects \
                    or self.closing:  # fmt: skip
                break
            await asyncio.sleep(0.05)
        return response

"""The fake Kubernetes's Job controller and kubelet (`fake_kubernetes` describes what they do).

`Nodes` is mixed into `FakeKubernetes`: it reads and changes the objects through the API
server's own methods, as the real controllers do through the API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunningPod:
    process: asyncio.subprocess.Process | None = None
    log: list[tuple[float, bytes]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Nodes:
    # --- the Job controller ---

    async def _run_job(self, ns: str, name: str) -> None:
        job = self.objects[("Job", ns, name)]
        spec = job["spec"]
        template = copy.deepcopy(spec["template"])
        pod_name = f"{name}-{secrets.token_hex(3)[:5]}"
        pod_labels = {**(template.get("metadata", {}).get("labels") or {}),
                      "batch.kubernetes.io/job-name": name, "job-name": name,
                      "controller-uid": job["metadata"]["uid"]}  # fmt: skip
        pod = {"metadata": {"name": pod_name, "labels": pod_labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                 "uid": job["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": template["spec"]}  # fmt: skip
        job["status"] = {"active": 1, "startTime": now_iso(), "ready": 0}
        await self._update("Job", job)
        await self._create("Pod", ns, pod, "v1")
        running = self.pods.setdefault(pod_name, RunningPod())
        deadline = spec.get("activeDeadlineSeconds")
        reason = "BackoffLimitExceeded"
        try:
            await asyncio.wait_for(running.done.wait(), deadline)
        except TimeoutError:
            reason = "DeadlineExceeded"
            if ("Pod", ns, pod_name) in self.objects:
                await self._delete("Pod", ns, pod_name, None, None)
            await running.done.wait()
        if ("Job", ns, name) not in self.objects or job["metadata"].get("deletionTimestamp"):
            return
        pod_now = self.objects.get(("Pod", ns, pod_name))
        succeeded = (
            reason != "DeadlineExceeded"
            and pod_now is not None
            and pod_now["status"]["phase"] == "Succeeded"
        )
        condition = {"type": "Complete" if succeeded else "Failed", "status": "True",
                     "lastTransitionTime": now_iso()}  # fmt: skip
        if not succeeded:
            condition.update({"reason": reason, "message": "Job has reached the specified backoff limit"
                              if reason == "BackoffLimitExceeded" else "Job was active longer than specified deadline"})  # fmt: skip
        job["status"] = {"active": 0, "startTime": job["status"]["startTime"],
                         "succeeded" if succeeded else "failed": 1, "conditions": [condition],
                         **({"completionTime": now_iso()} if succeeded else {})}  # fmt: skip
        await self._update("Job", job)
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            await asyncio.sleep(ttl)
            if self.objects.get(("Job", ns, name)) is job:
                await self._delete("Job", ns, name, "Background", None)

    # --- the kubelet ---

    async def _kubelet(self, ns: str, name: str) -> None:
        running = self.pods.setdefault(name, RunningPod())
        try:
            await self._run_pod(ns, name, running)
        finally:
            running.done.set()

    async def _waiting(self, pod: dict[str, Any], reason: str, message: str) -> None:
        container = pod["spec"]["containers"][0]["name"]
        wanted = [
            {
                "name": container,
                "ready": False,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ]
        if pod["status"].get("containerStatuses") != wanted:
            pod["status"]["containerStatuses"] = wanted
            await self._update("Pod", pod)

    async def _run_pod(self, ns: str, name: str, running: RunningPod) -> None:
        pod = self.objects[("Pod", ns, name)]
        spec = pod["spec"]
        root = self.workdir / "pods" / name
        volumes = await self._volumes(ns, pod, root)
        if volumes is None:
            return
        for init in spec.get("initContainers") or []:  # one after the other, each to success
            code = await self._run_container(ns, pod, init, volumes, root, running, init=True)
            if code is None:
                return
            if code != 0:
                pod["status"] = {"phase": "Failed", "reason": "Init:Error", "initContainerStatuses": [
                    {"name": init["name"], "state": {"terminated": {"exitCode": code, "reason": "Error"}}}]}  # fmt: skip
                await self._update("Pod", pod)
                return
        await self._run_container(
            ns, pod, spec["containers"][0], volumes, root, running, init=False
        )

    async def _volumes(self, ns: str, pod: dict[str, Any], root: Path) -> dict[str, Path] | None:
        """Each volume as a local folder; None if the pod went away while a Secret was awaited."""
        local: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            if "persistentVolumeClaim" in volume:
                folder = self.workdir / "claims" / volume["persistentVolumeClaim"]["claimName"]
            else:
                folder = root / "volumes" / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            if (
                "secret" in volume
            ):  # wait for it, as a kubelet does (the pod stays ContainerCreating)
                secret_name = volume["secret"]["secretName"]
                while (secret := self.objects.get(("Secret", ns, secret_name))) is None:
                    if not self._still_wanted(pod):
                        return None
                    await self._waiting(
                        pod, "ContainerCreating", f'secret "{secret_name}" not found'
                    )
                    await asyncio.sleep(0.05)
                for key, value in (secret.get("data") or {}).items():
                    path = folder / key
                    path.write_bytes(base64.b64decode(value))
                    path.chmod(volume["secret"].get("defaultMode", 0o644))
            local[volume["name"]] = folder
        return local

    def _still_wanted(self, pod: dict[str, Any]) -> bool:
        meta = pod["metadata"]
        key = ("Pod", meta["namespace"], meta["name"])
        return key in self.objects and not meta.get("deletionTimestamp")

    async def _run_container(
        self, ns: str, pod: dict[str, Any], container: dict[str, Any], volumes: dict[str, Path],
        root: Path, running: RunningPod, *, init: bool,
    ) -> int | None:  # fmt: skip
        """Run one container to its end: its exit code, or None if it could not start."""
        mounts = {
            m["mountPath"].rstrip("/"): volumes[m["name"]]
            for m in container.get("volumeMounts") or []
        }

        def local(value: str) -> str:
            for mount_path, folder in mounts.items():
                if value == mount_path or value.startswith(mount_path + "/"):
                    return str(folder) + value[len(mount_path) :]
            return value

        env = dict(self.base_env) if self.base_env is not None else {
            k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("FAKE_WORKER_")}  # fmt: skip
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                continue
            secret = self.objects.get(("Secret", ns, ref["name"]))
            data = (secret or {}).get("data") or {}
            if ref["key"] in data:
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                await self._waiting(pod, "CreateContainerConfigError",
                                    f'couldn\'t find key {ref["key"]} in Secret {ns}/{ref["name"]}')  # fmt: skip
                return None
        env = {key: local(value) for key, value in env.items()}
        argv = list(container.get("command") or self.images.get(container["image"], []))
        argv = [local(arg) for arg in argv + (container.get("args") or [])]
        if not argv:
            await self._waiting(
                pod, "CreateContainerError", f"no command for image {container['image']}"
            )
            return None
        if not self._still_wanted(pod):
            return None
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=root, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            await self._waiting(pod, "CreateContainerError", str(exc))
            return None
        running.process = process
        started = now_iso()
        if not init:
            pod["status"] = {"phase": "Running", "startTime": started, "containerStatuses": [
                {"name": container["name"], "ready": True, "state": {"running": {"startedAt": started}}}]}  # fmt: skip
            await self._update("Pod", pod)
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            if not init:
                running.log.append((time.time(), chunk))
        code = await process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what the container left behind
        code = 128 - code if code < 0 else code  # killed by a signal: 128 + its number
        if init:
            running.process = None
            return code
        pod["status"] = {"phase": "Succeeded" if code == 0 else "Failed", "startTime": started,
                         "containerStatuses": [{"name": container["name"], "ready": False, "state": {
                             "terminated": {"exitCode": code, "startedAt": started, "finishedAt": now_iso(),
                                            "reason": "Completed" if code == 0 else "Error"}}}]}  # fmt: skip
        if ("Pod", ns, pod["metadata"]["name"]) in self.objects:
            await self._update("Pod", pod)
        return code

    async def _terminate(self, ns: str, name: str, grace_s: int) -> None:
        running = self.pods.setdefault(name, RunningPod())
        process = running.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(running.done.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        await asyncio.sleep(0)
        await self._remove("Pod", ns, name)
        running.done.set()

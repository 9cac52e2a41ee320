"""What a worker's Job and its own Secret look like, as plain manifests.

`job_manifest` and `secret_manifest` build the objects the kubernetes spawner creates
(`spawners/kubernetes.py` describes them and the worker's side of the contract); they are
plain dicts so that the tests can validate them against the Kubernetes schemas. `finished`
and `exit_code` read a Job's and its pods' status back.
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

from ai_factory.core.launch_secrets import SECRETS_FILE_VAR, encode
from ai_factory.core.secrets import AGENT_CREDENTIALS, FACTORY_SECRETS
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.spawners.base import WorkerLaunch, container_env

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
WORKER_LABEL = "ai-factory.dev/worker"
ITEM_LABEL = "ai-factory.dev/item"
SELECTOR = f"{MANAGED_BY}=ai-factory,{NAME_LABEL}=ai-factory-worker"
HOME_PATH = "/data"
SECRETS_DIR = "/var/run/ai-factory"  # in memory, writable: the worker removes the file
SECRETS_SOURCE = "/var/run/ai-factory-secret"  # the Secret itself, in the init container only
SECRETS_KEY = "secrets.json"
WORKER_UID = 1000  # the image's user (docker/Dockerfile)
TERMINATION_GRACE_S = 10  # SIGTERM to SIGKILL when a worker's pod is deleted


def job_name(worker_id: UUID) -> str:
    return f"factory-worker-{worker_id}"


def labels(launch: WorkerLaunch) -> dict[str, str]:
    return {
        MANAGED_BY: "ai-factory",
        NAME_LABEL: "ai-factory-worker",
        WORKER_LABEL: str(launch.worker_id),
        ITEM_LABEL: str(launch.item.id),
    }


def pod_env(launch: WorkerLaunch, *, settings: Settings) -> list[dict[str, Any]]:
    """The container's environment: plain values for plumbing, references for credentials."""
    env = container_env(launch, settings=settings)
    for name in list(env):
        if name.upper() in FACTORY_SECRETS | AGENT_CREDENTIALS or name.startswith("FACTORY_K8S_"):
            del env[name]
    env["FACTORY_HOME"] = HOME_PATH
    env[SECRETS_FILE_VAR] = f"{SECRETS_DIR}/{SECRETS_KEY}"
    values: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    for name in sorted(AGENT_CREDENTIALS):
        ref = {"name": settings.factory_k8s_secret, "key": name, "optional": True}
        values.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return values


def job_manifest(launch: WorkerLaunch, *, settings: Settings) -> dict[str, Any]:
    """The worker's Job (a plain manifest: the tests validate it against the schema)."""
    name = job_name(launch.worker_id)
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    # The Secret's volume is read-only, so the worker could not remove the file and its agent
    # (the same user) could read it. An init container copies it to a memory-backed emptyDir,
    # which the worker's container mounts instead; the worker deletes the file at start.
    copy_secrets: dict[str, Any] = {
        "name": "secrets",
        "image": settings.factory_worker_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["cp", f"{SECRETS_SOURCE}/{SECRETS_KEY}", f"{SECRETS_DIR}/{SECRETS_KEY}"],
        "volumeMounts": [
            {"name": "secret-source", "mountPath": SECRETS_SOURCE, "readOnly": True},
            {"name": "secrets", "mountPath": SECRETS_DIR},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": security,
    }
    container: dict[str, Any] = {
        "name": "worker",
        "image": settings.factory_worker_image,
        "imagePullPolicy": "IfNotPresent",
        "env": pod_env(launch, settings=settings),
        "volumeMounts": [
            {"name": "home", "mountPath": HOME_PATH},
            {"name": "secrets", "mountPath": SECRETS_DIR},
        ],
        "securityContext": security,
    }
    if settings.worker_command:
        container["command"] = settings.worker_command
    resources = {
        key: dict(value)
        for key, value in (
            ("requests", settings.factory_k8s_requests),
            ("limits", settings.factory_k8s_limits),
        )
        if value
    }
    if resources:
        container["resources"] = resources
    home: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": settings.factory_k8s_home_claim}}
        if settings.factory_k8s_home_claim
        else {"emptyDir": {}}
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.factory_k8s_namespace,
            "labels": labels(launch),
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.k8s_deadline_seconds,
            "ttlSecondsAfterFinished": settings.factory_k8s_ttl_seconds,
            "template": {
                "metadata": {"labels": labels(launch)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.factory_k8s_service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "fsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [copy_secrets],
                    "containers": [container],
                    "volumes": [
                        {"name": "home", **home},
                        {
                            "name": "secret-source",
                            "secret": {"secretName": name, "defaultMode": 0o440},
                        },
                        {"name": "secrets", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    ],
                },
            },
        },
    }


def secret_manifest(launch: WorkerLaunch, *, settings: Settings, job_uid: str) -> dict[str, Any]:
    """The worker's own Secret, owned by its Job (deleted with it)."""
    secrets = {"WORKER_TOKEN": launch.token.get_secret_value()}
    if settings.github_token is not None:
        secrets["GITHUB_TOKEN"] = settings.github_token.get_secret_value()
    name = job_name(launch.worker_id)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": settings.factory_k8s_namespace,
            "labels": labels(launch),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid}
            ],
        },
        "data": {SECRETS_KEY: base64.b64encode(encode(secrets)).decode()},
    }


def finished(job: dict[str, Any]) -> bool:
    """Whether a Job has ended (Complete or Failed, or its one pod's count says so)."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return bool(status.get("succeeded") or status.get("failed"))


def exit_code(pods: list[dict[str, Any]]) -> int | None:
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode") is not None:
                return int(terminated["exitCode"])
    return None

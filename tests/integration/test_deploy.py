"""The deployment files: Kubernetes manifests against the Kubernetes schemas (offline, the
schemas ship in kubernetes-validate), the RBAC and network rules the kubernetes spawner
relies on, and the compose file through `podman-compose config`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ai_factory.orchestrator.spawners.kubernetes_job import MANAGED_BY, NAME_LABEL

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.31"  # the oldest minor release still maintained upstream


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schema(path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert (
            doc["metadata"].get("namespace", "ai-factory") == "ai-factory"
            or doc["kind"] == "Namespace"
        )


def test_the_orchestrator_may_do_exactly_what_the_spawner_does() -> None:
    role = one("Role", "ai-factory-orchestrator")
    rules = {(group, resource): sorted(rule["verbs"])
             for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]}  # fmt: skip
    assert rules == {
        ("batch", "jobs"): sorted(["create", "get", "list", "watch", "delete"]),
        ("", "pods"): sorted(["get", "list", "watch"]),
        ("", "pods/log"): ["get"],
        ("", "secrets"): ["create"],
    }
    binding = one("RoleBinding", "ai-factory-orchestrator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ai-factory-orchestrator", "namespace": "ai-factory"}
    ]
    pod = one("Deployment", "ai-factory-orchestrator")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ai-factory-orchestrator"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["FACTORY_SPAWNER"] == "kubernetes"
    assert env["FACTORY_K8S_SERVICE_ACCOUNT"] == "ai-factory-worker"
    worker_account = one("ServiceAccount", "ai-factory-worker")
    assert worker_account["automountServiceAccountToken"] is False
    bound = {
        s["name"]
        for d in documents()
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        for s in d["subjects"]
    }
    assert "ai-factory-worker" not in bound


def test_worker_egress_is_limited_to_dns_the_api_and_https() -> None:
    policy = one("NetworkPolicy", "ai-factory-worker-egress")["spec"]
    # the labels the spawner puts on every worker pod
    assert policy["podSelector"]["matchLabels"] == {
        NAME_LABEL: "ai-factory-worker",
        MANAGED_BY: "ai-factory",
    }
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["ingress"] == []
    ports = sorted((p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"])
    assert ports == [("TCP", 53), ("TCP", 443), ("TCP", 3000), ("UDP", 53)]
    [internet] = [r for r in policy["egress"] if "ipBlock" in r["to"][0]]
    assert "169.254.0.0/16" in internet["to"][0]["ipBlock"]["except"]  # no cloud metadata


@pytest.mark.skipif(shutil.which("podman") is None,
                    reason="podman is not installed (apt-get install podman)")  # fmt: skip
def test_the_compose_file_is_valid_for_podman_compose() -> None:
    env = {**os.environ, "FACTORY_API_TOKEN": "t", "GITHUB_TOKEN": "g", "REPOS": "acme/widgets"}
    done = subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(ROOT / "docker" / "docker-compose.yml"), "config"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["services"]) == {"postgres", "redis", "orchestrator", "intake"}
    assert config["services"]["orchestrator"]["environment"]["FACTORY_SPAWNER"] == "docker"

    missing = {k: v for k, v in env.items() if k != "FACTORY_API_TOKEN"}
    refused = subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(ROOT / "docker" / "docker-compose.yml"), "config"],
        env=missing, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "set FACTORY_API_TOKEN" in refused.stderr

"""The kubernetes spawner against a Kubernetes API: the fake one always, a real cluster
when KUBECONFIG is set.

    KUBECONFIG=~/.kube/config FACTORY_K8S_TEST_NAMESPACE=default \\
        .venv/bin/python -m pytest tests/integration/orchestrator/test_kubernetes_spawner.py

runs each test twice, against the fake (`tests.support.fake_kubernetes`) and against that
cluster (kind, k3s ...), whose workers run FACTORY_K8S_TEST_IMAGE (default busybox) with a
shell command; the namespace's default service account is used there. Without KUBECONFIG
the cluster runs skip with the reason. Tests that need the fake's own controls (compacting
its watch history, stopping it) run against the fake only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ai_factory.core.errors import ConfigError
from ai_factory.core.models import WorkItem
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners import WorkerLaunch
from ai_factory.orchestrator.spawners.kubernetes import KubernetesSpawner
from ai_factory.orchestrator.spawners.kubernetes_job import job_manifest, secret_manifest
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.settings import make_settings

WAIT_S = 120
FAKE_ONLY = pytest.mark.parametrize("cluster", ["fake"], indirect=True)


class Cluster:
    """Where the tests' Jobs go, and how to look at them (the fake, or a real cluster)."""

    def __init__(self, fake: FakeKubernetes | None, namespace: str, image: str) -> None:
        self.fake = fake
        self.namespace = namespace
        self.image = image

    def settings_overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {"factory_k8s_namespace": self.namespace, "factory_worker_image": self.image,
                                  "factory_k8s_requests": "cpu=10m,memory=32Mi", "factory_k8s_limits": ""}  # fmt: skip
        if self.fake is None:
            values["factory_k8s_service_account"] = "default"
        return values

    async def objects(self, kind: str, selector: str) -> list[dict[str, Any]]:
        if self.fake is not None:
            return await asyncio.to_thread(self.fake.list, kind, self.namespace, selector)
        from kubernetes_asyncio import client as k8s

        from ai_factory.orchestrator.spawners.kubernetes import load_api_config

        async with k8s.ApiClient(await load_api_config()) as api:
            calls = {"Job": k8s.BatchV1Api(api).list_namespaced_job,
                     "Pod": k8s.CoreV1Api(api).list_namespaced_pod,
                     "Secret": k8s.CoreV1Api(api).list_namespaced_secret}  # fmt: skip
            response = await calls[kind](
                self.namespace, label_selector=selector, _preload_content=False
            )
            return json.loads(await response.read())["items"]


@pytest.fixture(params=["fake", "cluster"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    if request.param == "cluster":
        if not os.environ.get("KUBECONFIG"):
            pytest.skip("no Kubernetes cluster: set KUBECONFIG to run these tests against one")
        yield Cluster(None, os.environ.get("FACTORY_K8S_TEST_NAMESPACE", "default"),
                      os.environ.get("FACTORY_K8S_TEST_IMAGE", "busybox:1.36"))  # fmt: skip
        return
    fake = FakeKubernetes(tmp_path / "kube").start()
    monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    try:
        yield Cluster(fake, "factory-test", "factory-worker:test")
    finally:
        fake.stop()


def launch(**item: Any) -> WorkerLaunch:
    now = datetime.now(UTC)
    work = WorkItem(id=uuid.uuid4(), source="api", source_id="1", source_url="", repo="/srv/widgets",
                    base_branch="main", spec="# Task\n- [ ] do it\n", priority="medium",
                    status="assigned", created_at=now, updated_at=now, **item)  # fmt: skip
    return WorkerLaunch(worker_id=uuid.uuid4(), token=SecretStr(f"worker-token-{uuid.uuid4().hex}"),
                        item=work, orchestrator_url="http://127.0.0.1:3000", attempt=1)  # fmt: skip


@pytest.fixture
async def spawners(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[KubernetesSpawner] = []

    def make(script: str, **overrides: Any) -> KubernetesSpawner:
        values = {**cluster.settings_overrides(), "factory_worker_command": f"sh -c '{script}'",
                  "github_token": "github-token-for-tests", **overrides}  # fmt: skip
        spawner = KubernetesSpawner(settings=make_settings(tmp_path, **values),
                                    logs=WorkerLogs(root=tmp_path / "logs", max_bytes=1 << 20))  # fmt: skip
        made.append(spawner)
        return spawner

    yield make
    for spawner in made:
        for handle in spawner.tracked():
            await spawner.stop(handle, grace_s=0)
        await spawner.close()


async def until(check, *, what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def next_exit(spawner: KubernetesSpawner) -> Any:
    return await asyncio.wait_for(spawner.exits.get(), WAIT_S)


def selector(run: WorkerLaunch) -> str:
    return f"ai-factory.dev/worker={run.worker_id}"


async def test_a_worker_is_a_job_whose_end_and_exit_code_are_reported_with_its_log(
    cluster: Cluster, spawners
) -> None:
    spawner = spawners("echo working on $WORKER_ID; exit 3")
    await spawner.check()
    run = launch()
    handle = await spawner.spawn(run)
    assert handle.container_id == f"{cluster.namespace}/factory-worker-{run.worker_id}"
    assert spawner.can_check(handle) and handle in spawner.tracked()

    ended = await next_exit(spawner)
    assert (ended.worker_id, ended.exit_code) == (run.worker_id, 3)
    assert not await spawner.alive(handle) and spawner.tracked() == []
    log = spawner.logs.read(run.item.id).text
    assert f"kubernetes job {handle.container_id}" in log and f"working on {run.worker_id}" in log

    [job] = await cluster.objects("Job", selector(run))
    assert job["metadata"]["labels"]["ai-factory.dev/item"] == str(run.item.id)
    [pod] = await cluster.objects("Pod", selector(run))
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-factory"
    [secret] = await cluster.objects("Secret", selector(run))
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]


async def test_the_token_reaches_the_worker_as_a_file_and_never_as_a_value_in_the_job(
    cluster: Cluster, spawners
) -> None:
    # The worker reads the file, then removes it (its agent runs as the same user).
    spawner = spawners(
        'cat "$FACTORY_SECRETS_FILE"; echo; test -z "$WORKER_TOKEN" && rm "$FACTORY_SECRETS_FILE"'
    )
    run = launch()
    handle = await spawner.spawn(run)
    ended = await next_exit(spawner)
    assert ended.exit_code == 0
    log = spawner.logs.read(run.item.id).text
    printed = json.loads(log.strip().splitlines()[-1])
    assert printed == {
        "WORKER_TOKEN": run.token.get_secret_value(),
        "GITHUB_TOKEN": "github-token-for-tests",
    }

    [job] = await cluster.objects("Job", selector(run))
    manifest = json.dumps(job)
    assert run.token.get_secret_value() not in manifest and "github-token-for-tests" not in manifest
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "secret-source" not in {m["name"] for m in container["volumeMounts"]}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert set(refs) == {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"}
    assert {r["name"] for r in refs.values()} == {"ai-factory"}
    [secret] = await cluster.objects("Secret", selector(run))
    assert (
        json.loads(base64.b64decode(secret["data"]["secrets.json"]))["WORKER_TOKEN"]
        == run.token.get_secret_value()
    )
    assert handle.worker_id == run.worker_id


async def test_stop_deletes_the_job_its_pod_and_its_secret(cluster: Cluster, spawners) -> None:
    spawner = spawners("echo started; sleep 300")
    run = launch()
    handle = await spawner.spawn(run)
    await until(lambda: _log_has(spawner, run, "started"), what="the worker to start")
    assert await spawner.alive(handle)

    await spawner.stop(handle, grace_s=1)
    assert not await spawner.alive(handle)
    assert (await next_exit(spawner)).worker_id == run.worker_id
    for kind in ("Job", "Pod", "Secret"):
        await until(lambda kind=kind: _none(cluster, kind, run), what=f"the {kind} to be deleted")


async def test_a_new_orchestrator_adopts_a_running_job_and_cleans_up_a_finished_one(
    cluster: Cluster, spawners
) -> None:
    first = spawners("echo started; sleep 3; echo adopted-and-done")
    running, done = launch(), launch()
    running_handle = await first.spawn(running)
    done_handle = await spawners("exit 0").spawn(done)
    await until(lambda: _log_has(first, running, "started"), what="the worker to start")
    await until(lambda: _finished(cluster, done), what="the short job to finish")
    await first.close()  # the orchestrator goes away; its Jobs stay

    second = spawners("unused")
    assert not await second.watch(done_handle)
    await until(lambda: _none(cluster, "Job", done), what="the finished job to be deleted")
    assert await second.watch(running_handle) and await second.watch(running_handle)
    assert second.tracked() == [running_handle]
    ended = await next_exit(second)
    assert (ended.worker_id, ended.exit_code) == (running.worker_id, 0)
    assert "adopted-and-done" in second.logs.read(running.item.id).text
    assert not await second.watch(running_handle)  # finished (and so deleted) now


@FAKE_ONLY  # needs the fake API server's own controls
async def test_an_expired_watch_lists_again_and_still_sees_the_end(
    cluster: Cluster, spawners
) -> None:
    assert cluster.fake is not None
    spawner = spawners("echo started; sleep 1")
    run = launch()
    await spawner.spawn(run)
    await until(lambda: _log_has(spawner, run, "started"), what="the worker to start")
    cluster.fake.compact()  # history gone, watches ended: resuming gets 410 Gone
    ended = await next_exit(spawner)
    assert (ended.worker_id, ended.exit_code) == (run.worker_id, 0)
    lists = [
        q for m, q in cluster.fake.requests if m == "GET" and "/jobs?" in q and "watch" not in q
    ]
    assert len(lists) >= 2, cluster.fake.requests


@FAKE_ONLY  # needs the fake API server's own controls
async def test_the_deadline_ends_a_worker_that_runs_too_long(cluster: Cluster, spawners) -> None:
    spawner = spawners("sleep 300", factory_k8s_deadline_seconds=1)
    run = launch()
    await spawner.spawn(run)
    ended = await next_exit(spawner)
    assert ended.worker_id == run.worker_id and ended.exit_code != 0
    [job] = await cluster.objects("Job", selector(run))
    assert job["status"]["conditions"][0]["reason"] == "DeadlineExceeded"


@FAKE_ONLY  # needs the fake API server's own controls
async def test_an_unreachable_api_is_a_start_up_error_and_no_verdict_on_running_workers(
    cluster: Cluster, spawners
) -> None:
    assert cluster.fake is not None
    spawner = spawners("sleep 300")
    handle = await spawner.spawn(launch())
    cluster.fake.stop()
    assert await spawner.alive(handle)  # cannot tell: heartbeats decide
    with pytest.raises(ConfigError, match="Kubernetes API unreachable"):
        await spawner.check()


async def test_without_a_kubeconfig_the_spawner_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    spawner = KubernetesSpawner(settings=make_settings(tmp_path, factory_spawner="kubernetes"),
                                logs=WorkerLogs(root=tmp_path / "logs", max_bytes=4096))  # fmt: skip
    with pytest.raises(ConfigError, match="KUBECONFIG"):
        await spawner.check()


def test_the_job_and_its_secret_are_valid_kubernetes_objects(tmp_path: Path) -> None:
    import kubernetes_validate

    settings = make_settings(tmp_path, factory_k8s_home_claim="factory-home", github_token="t")
    run = launch()
    for manifest in (job_manifest(run, settings=settings),
                     secret_manifest(run, settings=settings, job_uid=str(uuid.uuid4()))):  # fmt: skip
        kubernetes_validate.validate(manifest, "1.31", strict=True)
    job = job_manifest(run, settings=settings)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["template"]["spec"]["restartPolicy"]) == (0, "Never")
    assert spec["activeDeadlineSeconds"] == settings.k8s_deadline_seconds
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"]
    assert pod["volumes"][0] == {
        "name": "home",
        "persistentVolumeClaim": {"claimName": "factory-home"},
    }


async def _log_has(spawner: KubernetesSpawner, run: WorkerLaunch, text: str) -> bool:
    return text in spawner.logs.read(run.item.id).text


async def _none(cluster: Cluster, kind: str, run: WorkerLaunch) -> bool:
    return not await cluster.objects(kind, selector(run))


async def _finished(cluster: Cluster, run: WorkerLaunch) -> bool:
    jobs = await cluster.objects("Job", selector(run))
    return bool(jobs) and any(
        c["type"] in ("Complete", "Failed")
        for c in jobs[0].get("status", {}).get("conditions") or []
    )

"""A factory with the kubernetes spawner takes an item to a pushed branch and a pull request:
the real `factory worker` and the real `claude` binary (against the scripted model) run as the
pod of a Job, which the fake Kubernetes's kubelet starts as a local process
(tests/support/fake_kubernetes.py); the worker reads its token from the mounted Secret file,
and the model's key reaches it from the factory's Secret by secretKeyRef."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from ai_factory.sim import SimServer, sim_env
from ai_factory.sim.env import SIM_API_KEY
from tests.github_standin import GitHubStandin
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.polling import wait_for
from tests.support.running_factory import run_worker_runtime
from tests.support.server import ServerThread
from tests.support.settings import make_settings
from tests.support.work_api import spec_of

pytestmark = pytest.mark.e2e

REPO = "acme/widgets"
NAMESPACE = "factory-e2e"
IMAGE = "factory-worker:e2e"


def test_a_kubernetes_job_runs_the_real_worker_to_a_pull_request(
    tmp_path: Path,
    database_url: str,
    sim: SimServer,
    github_standin: GitHubStandin,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github = github_standin
    github.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    # The orchestrator's environment, which container_env hands on to the pod (the model's
    # key goes by reference instead: see the Secret below).
    for name, value in sim_env(sim.url, max_retries=4, config_dir=str(tmp_path / "claude")).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAX_ITERATIONS", "4")
    fake = FakeKubernetes(
        tmp_path / "kube", images={IMAGE: [sys.executable, "-m", "ai_factory.worker"]}
    ).start()
    try:
        fake.put_secret(NAMESPACE, "ai-factory", {"ANTHROPIC_API_KEY": SIM_API_KEY})
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        settings = make_settings(
            tmp_path, database_url=database_url, factory_spawner="kubernetes", factory_k8s_namespace=NAMESPACE,
            factory_worker_image=IMAGE, cooldown_seconds=0, heartbeat_interval_seconds=1,
            health_check_interval_seconds=0.5, shutdown_grace_seconds=0,
            github_token=github.token, github_api_url=github.api_url,
        )  # fmt: skip
        server = ServerThread(settings, components=[run_worker_runtime])
        server.settings = settings.model_copy(
            update={"orchestrator_url": server.url, "port": server.port}
        )
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                spec = spec_of("Create `a.txt` containing `a`")
                item = http.post(
                    "/api/work", json={"repo": github.git_url(REPO), "spec": spec}
                ).json()
                done = wait_for(
                    lambda: (i := http.get(f"/api/work/{item['id']}").json())["status"]
                    in ("completed", "failed", "stuck") and i,
                    timeout=240, what="the item to finish",
                )  # fmt: skip
                log = http.get(f"/api/work/{item['id']}/logs").json()["text"]
                if done["status"] == "completed":  # the pod's log is copied as it comes
                    log = wait_for(
                        lambda: "worker.delivered" in (t := http.get(f"/api/work/{item['id']}/logs").json()["text"]) and t,
                        what="the pod's log to be copied",
                    )  # fmt: skip
                assert done["status"] == "completed", log[-6000:]
                worker = http.get(f"/api/workers/{done['workerId']}").json()
        finally:
            runtime = server.services.runtime if server.services else None
            if runtime is not None:
                runtime.hurry()
                server.call(runtime.shutdown())
            server.stop()
        assert worker["containerId"] == f"{NAMESPACE}/factory-worker-{done['workerId']}"
        assert f"kubernetes job {worker['containerId']}" in log and "worker.delivered" in log
        [pull] = github.pulls(REPO)
        assert pull.pull is not None and done["prUrl"].endswith(f"/pull/{pull.number}")
        assert github.read_file(REPO, pull.pull.head_ref, "a.txt") == b"a\n"
        [job] = fake.list("Job", NAMESPACE, f"ai-factory.dev/item={item['id']}")
        assert job["status"]["conditions"][0]["type"] == "Complete"
        assert github.token not in str(job) and SIM_API_KEY not in str(job)
    finally:
        fake.stop()

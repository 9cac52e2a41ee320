"""Spawners for real: child processes, bubblewrap sandboxes, and containers on podman.

The docker spawner is tested against podman's Docker-compatible API: a private podman
service (its own storage, runc, cgroupfs) serving a socket, and an image imported
from a tiny root filesystem; the host's Python and the fake worker are mounted into
the container read-only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ai_factory.core.errors import ConfigError
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners import BwrapSpawner
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.net import free_port
from tests.support.podman import containers_env, podman_service
from tests.support.polling import wait_for
from tests.support.processes import wait_until_healthy
from tests.support.running_factory import FAKE_WORKER, spec
from tests.support.settings import make_settings


def test_process_worker_gets_its_identity_no_secrets_its_own_session_and_no_stdin(
    start_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = start_factory()
    # The orchestrator's own environment, as a spawned worker inherits it.
    monkeypatch.setenv("FAKE_WORKER_DUMP", "1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/sim")
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/factory")
    monkeypatch.setenv("FACTORY_API_TOKEN", "admin-secret-token")
    monkeypatch.setenv("GITHUB_TOKEN", "github-secret-token")
    item = factory.submit(spec(seconds=0))
    item = factory.wait_status(item["id"], "completed")  # it registered: it had its token
    env = next(m for m in factory.markers(item["id"]) if m["event"] == "env")
    assert {"WORKER_ID", "WORK_ITEM", "ORCHESTRATOR_URL", "ANTHROPIC_BASE_URL"} <= set(env["names"])
    # Secrets never travel in the environment (the agent could read it): a pipe brings them.
    for secret in ("DATABASE_URL", "FACTORY_API_TOKEN", "WORKER_TOKEN", "GITHUB_TOKEN"):
        assert secret not in env["names"], secret
    assert env["orchestratorUrl"] == factory.server.url
    assert {"id", "repo", "spec", "baseBranch", "sourceId"} <= set(env["workItemKeys"])
    assert env["sid"] == env["pid"] and env["pgid"] == env["pid"]
    assert env["stdinEmpty"] is True

    log = factory.http.get(f"/api/work/{item['id']}/logs").json()
    assert "fake worker: registered" in log["text"] and "fake worker: completed" in log["text"]
    assert f"worker {item['workerId']} attempt 1" in log["text"]
    assert log["nextOffset"] == log["size"]
    assert factory.http.get(f"/api/work/{item['id']}/logs", params={"offset": log["size"]}).json()["text"] == ""


def test_worker_log_is_rotated_past_the_cap(start_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_SPAM_BYTES", str(64 * 1024))
    factory = start_factory(log_max_bytes=8192)
    item = factory.submit(spec(mode="spam", seconds=2))
    path = factory.services.logs.path(uuid.UUID(item["id"]))
    rotated = path.with_name(path.name + ".1")
    wait_for(rotated.exists, what="the log to be rotated")
    factory.wait_status(item["id"], "completed")
    assert rotated.stat().st_size >= 64 * 1024
    assert path.stat().st_size < 8192
    assert "[log rotated" in path.read_text()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
def test_bwrap_worker_can_write_only_inside_factory_home(
    start_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = tmp_path / "home" / "probe"
    outside = Path("/var/tmp") / f"factory-probe-{uuid.uuid4().hex}"
    monkeypatch.setenv("FAKE_WORKER_DUMP", "1")
    monkeypatch.setenv("FAKE_WORKER_PROBE_PATHS", f"{inside},{outside}")
    factory = start_factory(factory_spawner="bwrap")
    item = factory.submit(spec(seconds=0))
    done = factory.wait_status(item["id"], "completed", "failed")
    assert done["status"] == "completed", factory.http.get(f"/api/work/{item['id']}/logs").json()["text"]
    env = next(m for m in factory.markers(item["id"]) if m["event"] == "env")
    assert env["writable"] == {str(inside): True, str(outside): False}
    assert inside.read_text() == "probe" and not outside.exists()


async def test_bwrap_spawner_missing_is_a_clear_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = make_settings(tmp_path, factory_spawner="bwrap")
    spawner = BwrapSpawner(settings=settings, logs=WorkerLogs(root=tmp_path / "logs", max_bytes=4096))
    with pytest.raises(ConfigError, match="bubblewrap"):
        await spawner.check()


def test_factory_orchestrator_refuses_to_start_without_bwrap(tmp_path: Path, database_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FACTORY_SPAWNER": "bwrap",
        "FACTORY_HOME": str(tmp_path / "home"),
        "PORT": "0",
        "PATH": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ai_factory", "orchestrator"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: FACTORY_SPAWNER: bwrap needs bubblewrap" in done.stderr


# --- docker spawner, against podman ---

class Podman:
    """A private image store holding a tiny worker image, served by podman's Docker API."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.store = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run"),
                      "--storage-driver", "vfs"]  # fmt: skip
        self.image = "localhost/factory-test-worker:latest"
        self.env = containers_env(base)
        self.docker_host = ""  # set while the API is served

    def podman(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.store, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=True)  # fmt: skip

    def load_image(self) -> None:
        rootfs = self.base / "rootfs.tar"
        with tarfile.open(rootfs, "w") as tar:
            for name in ("usr", "etc", "tmp", "proc", "sys", "dev", "root", "run", "work", "var"):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
                tar.addfile(info)
            for name, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")):
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        self.podman("import", str(rootfs), self.image)

    def remove_all(self) -> None:
        subprocess.run([*self.store, "rm", "-af"], env=self.env, capture_output=True, timeout=120,
                       check=False)  # fmt: skip


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman and runc are not installed (apt-get install podman runc): docker spawner untested")
    base = Path(tempfile.mkdtemp(prefix="factory-podman-", dir="/tmp"))
    server = Podman(base)
    try:
        server.load_image()
        with podman_service(base / "api.sock", env=server.env, log=base / "service.log",
                            podman=server.store) as docker_host:  # fmt: skip
            server.docker_host = docker_host
            yield server
    finally:
        server.remove_all()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def docker_factory(start_factory, podman: Podman, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_HOST", podman.docker_host)
    python = os.path.realpath(sys.executable)
    mounts = ["/usr:/usr:ro", f"{sys.base_prefix}:{sys.base_prefix}:ro", f"{FAKE_WORKER.parent}:/fake:ro"]

    def start(**overrides):
        return start_factory(
            factory_spawner="docker",
            factory_worker_image=podman.image,
            factory_worker_command=f"{python} /fake/{FAKE_WORKER.name}",
            factory_worker_mounts=",".join(mounts),
            **overrides,
        )

    return start


def containers_of(item_id: str) -> list:
    import docker

    client = docker.from_env()
    try:
        # sparse: no inspect per container, which fails for one removed in between
        return client.containers.list(
            all=True, sparse=True, filters={"label": f"ai-factory.item={item_id}"}
        )
    finally:
        client.close()


def test_docker_worker_runs_in_a_container_that_removes_itself(docker_factory) -> None:
    factory = docker_factory()
    item = factory.submit(spec(seconds=1.5))
    running = factory.wait_status(item["id"], "running", "completed", "failed", timeout=90)
    worker = factory.worker_row(running["workerId"])
    assert worker["containerId"] and worker["pid"] is None
    done = factory.wait_status(item["id"], "completed", "failed", timeout=90)
    assert done["status"] == "completed", factory.http.get(f"/api/work/{item['id']}/logs").json()["text"]
    wait_for(lambda: not containers_of(item["id"]), what="AutoRemove to remove the container")
    log = factory.http.get(f"/api/work/{item['id']}/logs").json()["text"]
    assert "fake worker: registered" in log
    assert wait_for(lambda: factory.worker_row(running["workerId"])["exitCode"] == 0 or None, what="exit code") is not None


def test_docker_worker_without_heartbeats_is_stopped_and_its_item_failed(docker_factory) -> None:
    factory = docker_factory(heartbeat_timeout_seconds=3, max_attempts=1)
    item = factory.submit(spec(mode="hang"))
    factory.wait_status(item["id"], "running", timeout=90)
    assert containers_of(item["id"])
    failed = factory.wait_status(item["id"], "failed", timeout=90)
    assert "no heartbeat for 3s" in failed["error"]
    wait_for(lambda: not containers_of(item["id"]), timeout=90, what="the container to be stopped and removed")


def test_docker_spawner_reports_a_missing_image_at_start_up(
    tmp_path: Path, podman: Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from ai_factory.orchestrator.spawners.docker import DockerSpawner

    monkeypatch.setenv("DOCKER_HOST", podman.docker_host)
    settings = make_settings(tmp_path, factory_spawner="docker", factory_worker_image="localhost/nope:latest")
    spawner = DockerSpawner(settings=settings, logs=WorkerLogs(root=tmp_path / "logs", max_bytes=4096))
    with pytest.raises(ConfigError, match="FACTORY_WORKER_IMAGE"):
        asyncio.run(spawner.check())
    _ = time


def test_log_reads_never_split_a_character_and_restart_after_rotation(tmp_path: Path) -> None:
    logs = WorkerLogs(root=tmp_path / "logs", max_bytes=4096)
    item_id = uuid.uuid4()
    fd = logs.open_append(item_id, "worker w attempt 1 (process)")
    os.write(fd, "héllo wörld\n".encode())
    os.close(fd)
    text, offset = "", 0
    while True:  # three bytes at a time: the two-byte characters straddle chunk edges
        chunk = logs.read(item_id, offset=offset, limit=3)
        text += chunk.text
        if chunk.next_offset == offset:
            chunk = logs.read(item_id, offset=offset, limit=4)
            text += chunk.text
        offset = chunk.next_offset
        if offset >= chunk.size:
            break
    assert text.endswith("héllo wörld\n") and "\ufffd" not in text

    fd = logs.open_append(item_id, "worker w attempt 2 (process)")
    os.write(fd, b"y" * 5000)
    os.close(fd)
    assert logs.enforce_cap(item_id)
    after = logs.read(item_id, offset=offset + 5000)
    assert after.reset and after.offset == 0 and "[log rotated" in after.text
    assert logs.read(uuid.uuid4()).size == 0


def test_a_log_read_from_the_end_returns_its_last_bytes_and_where_they_start(
    tmp_path: Path,
) -> None:
    logs = WorkerLogs(root=tmp_path / "logs", max_bytes=1 << 20)
    item_id = uuid.uuid4()
    fd = logs.open_append(item_id, "worker w attempt 1 (process)")
    os.write(fd, b"".join(f"line {n}\n".encode() for n in range(100)))
    os.close(fd)
    size = logs.read(item_id).size

    tail = logs.read(item_id, limit=16, from_end=True)
    assert (tail.offset, tail.next_offset, tail.text) == (size - 16, size, "line 98\nline 99\n")
    whole = logs.read(item_id, limit=size + 100, from_end=True)
    assert whole.offset == 0 and whole.text.endswith("line 99\n") and not whole.reset
    assert logs.read(uuid.uuid4(), limit=16, from_end=True).size == 0


# --- kubernetes spawner, against the fake Kubernetes API, whose kubelet runs each Job's pod
# as a local process (tests/support/fake_kubernetes.py; the spawner alone runs against a real
# cluster too: tests/integration/orchestrator/test_kubernetes_spawner.py) ---

K8S_NAMESPACE = "factory-test"


@pytest.fixture
def fake_kubernetes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes(tmp_path / "kube").start()
    monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield fake
    fake.stop()


@pytest.fixture
def kubernetes_factory(start_factory, fake_kubernetes: FakeKubernetes):
    def start(**overrides):
        return start_factory(
            factory_spawner="kubernetes",
            factory_k8s_namespace=K8S_NAMESPACE,
            factory_worker_image="factory-worker:test",
            factory_k8s_ttl_seconds=1,
            **overrides,
        )

    return start


def jobs_of(fake: FakeKubernetes, item_id: str) -> list[dict]:
    return fake.list("Job", K8S_NAMESPACE, f"ai-factory.dev/item={item_id}")


def test_kubernetes_worker_runs_as_a_job_that_is_deleted_after_its_ttl(
    kubernetes_factory, fake_kubernetes: FakeKubernetes
) -> None:
    factory = kubernetes_factory()
    item = factory.submit(spec(seconds=1.5))
    running = factory.wait_status(item["id"], "running", "completed", "failed", timeout=90)
    worker = factory.worker_row(running["workerId"])
    assert worker["containerId"] == f"{K8S_NAMESPACE}/factory-worker-{running['workerId']}"
    assert worker["pid"] is None
    done = factory.wait_status(item["id"], "completed", "failed", timeout=90)
    assert done["status"] == "completed", factory.http.get(f"/api/work/{item['id']}/logs").json()["text"]
    # the pod's log is copied into the item's as it comes
    log = wait_for(
        lambda: "fake worker: completed" in (t := factory.http.get(f"/api/work/{item['id']}/logs").json()["text"]) and t,
        what="the pod's log",
    )
    assert "fake worker: registered" in log
    assert wait_for(lambda: factory.worker_row(running["workerId"])["exitCode"] == 0 or None, what="exit code")
    wait_for(lambda: not jobs_of(fake_kubernetes, item["id"]), what="the finished Job to be deleted (TTL)")
    assert not fake_kubernetes.list("Secret", K8S_NAMESPACE, f"ai-factory.dev/item={item['id']}")


def test_kubernetes_worker_without_heartbeats_is_stopped_and_its_item_failed(
    kubernetes_factory, fake_kubernetes: FakeKubernetes
) -> None:
    factory = kubernetes_factory(heartbeat_timeout_seconds=3, max_attempts=1)
    item = factory.submit(spec(mode="hang"))
    factory.wait_status(item["id"], "running", timeout=90)
    assert jobs_of(fake_kubernetes, item["id"])
    failed = factory.wait_status(item["id"], "failed", timeout=90)
    assert "no heartbeat for 3s" in failed["error"]
    wait_for(lambda: not jobs_of(fake_kubernetes, item["id"]), timeout=90, what="the Job to be deleted")
    assert not fake_kubernetes.list("Pod", K8S_NAMESPACE, f"ai-factory.dev/item={item['id']}")


def test_killing_a_kubernetes_worker_deletes_its_job_and_fails_the_item(
    kubernetes_factory, fake_kubernetes: FakeKubernetes
) -> None:
    factory = kubernetes_factory()
    item = factory.submit(spec(mode="forever"))
    running = factory.wait_status(item["id"], "running", timeout=90)
    killed = factory.http.post(f"/api/workers/{running['workerId']}/kill", json={"reason": "looping"})
    assert killed.status_code == 200
    failed = factory.wait_status(item["id"], "failed", timeout=90)
    assert "looping" in failed["error"]
    wait_for(lambda: not jobs_of(fake_kubernetes, item["id"]), timeout=90, what="the Job to be deleted")


def test_kubernetes_spawner_reports_an_unreachable_api_at_start_up(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    import asyncio

    from ai_factory.orchestrator.spawners.kubernetes import KubernetesSpawner

    fake_kubernetes.stop()
    settings = make_settings(tmp_path, factory_spawner="kubernetes")
    spawner = KubernetesSpawner(settings=settings, logs=WorkerLogs(root=tmp_path / "logs", max_bytes=4096))

    async def check() -> None:
        try:
            await spawner.check()
        finally:
            await spawner.close()

    with pytest.raises(ConfigError, match="Kubernetes API unreachable"):
        asyncio.run(check())


def test_a_restarted_orchestrator_adopts_the_running_kubernetes_workers(
    tmp_path: Path, database_url: str, fake_kubernetes: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orchestrator is killed while its Jobs run; the next one, on the same address,
    adopts them by their labels, and each item completes exactly once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("FAKE_WORKER_MARKERS", str(markers))  # the fake kubelet passes it to pods
    env = {
        **os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port),
        "FACTORY_HOME": str(tmp_path / "home"), "FACTORY_SPAWNER": "kubernetes",
        "FACTORY_K8S_NAMESPACE": K8S_NAMESPACE, "FACTORY_WORKER_IMAGE": "factory-worker:test",
        "FACTORY_WORKER_COMMAND": f"{sys.executable} {FAKE_WORKER}",
        "COOLDOWN_SECONDS": "0", "MAX_WORKERS": "2", "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "HEARTBEAT_TIMEOUT_SECONDS": "60", "HEALTH_CHECK_INTERVAL_SECONDS": "0.5",
        "SHUTDOWN_GRACE_SECONDS": "0",
    }  # fmt: skip
    env.pop("ORCHESTRATOR_URL", None)
    env.pop("REDIS_URL", None)

    def orchestrator(n: int) -> subprocess.Popen:
        log = (tmp_path / f"orchestrator-{n}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "ai_factory", "orchestrator"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip

        wait_until_healthy(url, proc, timeout_s=60,
                           output=lambda: (tmp_path / f"orchestrator-{n}.log").read_text())  # fmt: skip
        return proc

    first = orchestrator(1)
    with httpx.Client(base_url=url, timeout=30) as http:
        ids = [http.post("/api/work", json={"repo": "https://git.example/srv/w.git", "spec": spec(seconds=4, title=f"T{n}")}).json()["id"]
               for n in range(2)]  # fmt: skip
    wait_for(lambda: all((markers / f"{i}.jsonl").exists() for i in ids), what="both workers to start")
    first.kill()
    first.wait(30)
    second = orchestrator(2)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_for(lambda: all(http.get(f"/api/work/{i}").json()["status"] == "completed" for i in ids),
                     timeout=120, what="both items to complete")  # fmt: skip
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    log = (tmp_path / "orchestrator-2.log").read_text()
    assert "runtime.recovered adopted=2 requeued=0" in log, log
    for item_id in ids:
        events = (markers / f"{item_id}.jsonl").read_text()
        assert events.count('"start"') == 1 and events.count('"completed"') == 1, events

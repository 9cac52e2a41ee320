"""The container deployment, run for real: one item through workers in the factory's image.

    docker/build-local.sh                     # once: the image, from a debootstrap root
    . .venv/bin/activate && python bench/container.py

What runs: `factory orchestrator` on this host with FACTORY_SPAWNER=docker against podman's
Docker-compatible API (a `podman system service` on a private socket, the machine's own
image store), PostgreSQL and Redis of this host (TEST_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, in a fresh database dropped afterwards; Redis
at 127.0.0.1:6379 under its own key prefix), the scripted model (`ai_factory.sim`) and the
GitHub stand-in (tests/github_standin) on 127.0.0.1. The worker is a container of
FACTORY_WORKER_IMAGE (default localhost/factory-worker:latest) on the host's network, running
the real `factory worker` and the `claude` binary bundled in the image as uid 1000. The item
must complete, its branch must be pushed to the stand-in and its pull request opened.

Prints the image's size, the time from submit to completed and the branch's commits; exits
non-zero when something is missing (with the reason) or the item does not complete.
`tests/e2e/test_container_image.py` runs this when podman and the image are there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the stdlib's `queue`; keep this folder off the import path,
# and put the repository's root on it (the GitHub stand-in lives in tests/).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg

from ai_factory.sim import SimServer, sim_env
from tests.github_standin import GitHubStandin
from tests.support.net import free_port
from tests.support.podman import containers_env, podman_service

IMAGE = os.environ.get("FACTORY_WORKER_IMAGE", "localhost/factory-worker:latest")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = "acme/widgets"
SPEC = "# Greeting\n\n- [ ] Create `hello.txt` containing `hello from a container`\n"


class Missing(Exception):
    """Something this run needs is not on this machine."""


def wait(check, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def image_size(image: str) -> int:
    if shutil.which("podman") is None:
        raise Missing("podman is not installed (apt-get install podman)")
    done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", image],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise Missing(f"image {image} not found: build it with docker/build-local.sh")
    return int(done.stdout.strip())


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"factory_container_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise Missing(
            f"PostgreSQL unreachable at {DATABASE_URL} (TEST_DATABASE_URL): {exc}"
        ) from exc
    base, _, _ = DATABASE_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(*, image: str, timeout: float) -> dict[str, object]:
    size = image_size(image)
    print(f"image {image}: {size / 1e6:.0f} MB")
    workdir = Path(tempfile.mkdtemp(prefix="factory-container-"))
    try:
        with (
            podman_service(workdir / "podman.sock", env=containers_env(workdir),
                           log=workdir / "podman-service.log") as docker_host,
            fresh_database() as database_url,
            SimServer() as sim,
            GitHubStandin(workdir / "github") as github,
        ):
            github.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {
                "PATH": os.environ.get("PATH", ""), "HOME": str(workdir),
                "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "HOST": "127.0.0.1", "PORT": str(port), "ORCHESTRATOR_URL": url,
                "FACTORY_HOME": str(workdir / "home"), "FACTORY_SPAWNER": "docker",
                "DOCKER_HOST": docker_host, "FACTORY_WORKER_IMAGE": image,
                "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.api_url,
                "COOLDOWN_SECONDS": "0", "MAX_WORKERS": "1", "HEARTBEAT_INTERVAL_SECONDS": "2",
                "MAX_ITERATIONS": "4", "LOG_LEVEL": "INFO",
                **sim_env(sim.url, max_retries=4),  # passed on to the worker containers
            }  # fmt: skip
            log_path = workdir / "orchestrator.log"
            orchestrator = subprocess.Popen(
                [sys.executable, "-m", "ai_factory", "orchestrator"], env=env, cwd=workdir,
                stdout=log_path.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                http = httpx.Client(base_url=url, timeout=30)

                def serving() -> bool:
                    if orchestrator.poll() is not None:
                        raise RuntimeError(
                            f"the orchestrator exited:\n{log_path.read_text()[-3000:]}"
                        )
                    try:
                        return http.get("/healthz").status_code == 200
                    except httpx.TransportError:
                        return False

                wait(serving, timeout=120, what="the orchestrator")
                started = time.monotonic()
                item = http.post(
                    "/api/work", json={"repo": github.git_url(REPO), "spec": SPEC}
                ).json()

                def finished() -> dict | None:
                    current = http.get(f"/api/work/{item['id']}").json()
                    if current["status"] in ("completed", "failed", "stuck"):
                        return current
                    log = http.get(f"/api/work/{item['id']}/logs").json()["text"]
                    return current if "cannot start container" in log else None  # no retrying

                try:
                    done = wait(finished, timeout=timeout, what="the item to finish")
                except TimeoutError:
                    done = http.get(f"/api/work/{item['id']}").json()
                elapsed = time.monotonic() - started
                worker_log = http.get(f"/api/work/{item['id']}/logs").json()["text"]
                worker = (
                    http.get(f"/api/workers/{done['workerId']}").json()
                    if done.get("workerId")
                    else {}
                )
            finally:
                orchestrator.send_signal(signal.SIGTERM)
                try:
                    orchestrator.wait(60)
                except subprocess.TimeoutExpired:
                    orchestrator.kill()
            pulls = github.pulls(REPO)
            branch = pulls[0].pull.head_ref if pulls and pulls[0].pull else None
            commits = github.commit_messages(REPO, branch) if branch else []
            content = github.read_file(REPO, branch, "hello.txt") if branch else None
            result = {
                "image": image, "imageBytes": size, "status": done["status"],
                "seconds": round(elapsed, 1), "branch": branch, "commits": commits,
                "file": content.decode() if content else None, "prUrl": done.get("prUrl"),
                "containerId": worker.get("containerId"),
            }  # fmt: skip
            if done["status"] != "completed" or not branch or content is None:
                print(worker_log[-6000:], file=sys.stderr)
                print(log_path.read_text()[-4000:], file=sys.stderr)
            return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    try:
        result = run(image=args.image, timeout=args.timeout)
    except Missing as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"item {result['status']} in {result['seconds']} s (submit to completed)")
        print(f"worker container {str(result['containerId'])[:12]}; branch {result['branch']} pushed "
              f"with {result['commits']}; hello.txt = {result['file']!r}")  # fmt: skip
    ok = result["status"] == "completed" and result["branch"] and result["file"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Shared e2e fixtures: the scripted model, the claude environment, origin repositories,
and helpers to queue an item and run a real worker against the test orchestrator."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from ai_factory.core.models import WorkItem
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.tokens import hash_token, new_worker_token
from ai_factory.sim import SimServer, sim_env
from tests.conftest import make_settings
from tests.support.server import ServerThread


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer() as server:
        yield server


def claude_env(
    sim: SimServer, tmp_path: Path, *, oauth: bool = False, max_retries: int = 0
) -> dict[str, str]:
    """The CLI's environment for the scripted model (offline, isolated config dir)."""
    return sim_env(
        sim.url, oauth=oauth, max_retries=max_retries, config_dir=str(tmp_path / "claude-config")
    )


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


@dataclass
class Origin:
    """A bare repository the worker clones from and pushes to, with a seed commit on main."""

    path: Path

    @classmethod
    def create(cls, tmp_path: Path, files: dict[str, str] | None = None) -> Origin:
        seed = tmp_path / "seed"
        seed.mkdir()
        git(seed, "init", "-q", "-b", "main")
        git(seed, "config", "user.name", "Seed")
        git(seed, "config", "user.email", "seed@example.invalid")
        for name, text in {"README.md": "# demo\n", **(files or {})}.items():
            (seed / name).parent.mkdir(parents=True, exist_ok=True)
            (seed / name).write_text(text)
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", "initial")
        bare = tmp_path / "origin.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
        return cls(bare)

    def branches(self) -> list[str]:
        out = git(self.path, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return out.split()

    def log(self, branch: str) -> list[str]:
        return git(self.path, "log", "--format=%s", f"main..{branch}").splitlines()

    def files(self, branch: str) -> list[str]:
        out = git(self.path, "diff", "--name-only", f"main...{branch}")
        return sorted(out.split())

    def show(self, branch: str, path: str) -> str:
        return git(self.path, "show", f"{branch}:{path}")

    def tree(self, branch: str) -> list[str]:
        return sorted(git(self.path, "ls-tree", "-r", "--name-only", branch).split())


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin.create(tmp_path)


def spec_of(*tasks: str, title: str = "Demo work") -> str:
    return f"# {title}\n\n" + "".join(f"- [ ] {t}\n" for t in tasks)


def submit(api: ServerThread, repo: Path | str, spec: str) -> WorkItem:
    response = httpx.post(f"{api.url}/api/work", json={"repo": str(repo), "spec": spec})
    response.raise_for_status()
    return WorkItem.model_validate(response.json())


def item_detail(api: ServerThread, item_id: UUID) -> dict[str, Any]:
    response = httpx.get(f"{api.url}/api/work/{item_id}", params={"events": "true"})
    response.raise_for_status()
    return response.json()


@dataclass
class Spawned:
    """A worker row created the way the scheduler does (the claim creates it)."""

    worker_id: UUID
    token: str
    item: WorkItem


def spawn_record(api: ServerThread, item: WorkItem) -> Spawned:
    services = api.services
    assert services is not None
    worker_id, token = uuid4(), new_worker_token()
    assignment = api.call(
        services.ledger.claim_next(
            worker_id=worker_id, token_hash=hash_token(token), spawner="process"
        )
    )
    assert assignment is not None and assignment.item.id == item.id, "the item was not next"
    return Spawned(worker_id, token, assignment.item)  # type: ignore[union-attr]


def worker_settings(tmp_path: Path, api: ServerThread, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": api.settings.database_url,
        "orchestrator_url": api.url,
        "heartbeat_interval": 1,
        "max_iterations": 6,
        "stuck_after": 2,
        "iteration_idle_timeout": 60,
        "iteration_timeout": 120,
        "gate_timeout": 60,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def reserved_port_server(settings: Settings, port: int) -> ServerThread:
    """A test orchestrator on a given port (to bring one back where the old one was)."""
    server = ServerThread(settings)
    server.sock.close()
    server.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.sock.bind(("127.0.0.1", port))
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    return server


def events_of(detail: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in detail.get("events", []) if e["kind"] == kind]


def lock_as_another_worker(api: ServerThread, repo: Path | str, path: str) -> None:
    """Register a second worker (for another item of `repo`) and take the lock on `path`."""
    other = submit(api, repo, spec_of(f"Append `x` to `{path}`", title="Other work"))
    held = httpx.post(f"{api.url}/api/worker/register", json={"workItemId": str(other.id)}).json()
    locked = httpx.post(
        f"{api.url}/api/worker/{held['workerId']}/lock",
        json={"files": [path]},
        headers={"Authorization": f"Bearer {held['token']}"},
    ).json()
    assert locked["acquired"] == [path], locked


def api_call(api: ServerThread, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{api.url}{path}", **kwargs)
    response.raise_for_status()
    return response.json()

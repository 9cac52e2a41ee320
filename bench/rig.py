"""What the agent benches share: a real factory on the scripted model, and sample repositories.

`BenchFactory` starts `factory orchestrator` (API, scheduler, the process spawner, real
`factory worker` processes driving the real `claude` binary) as a child process on a
fresh database of the machine's PostgreSQL (BENCH_DATABASE_URL, dropped at the end),
with ANTHROPIC_BASE_URL pointing at a `SimServer` in the bench's own process.
`sample_repo` makes the git repository the items work on.

Imported by bench/tokens.py and bench/windows.py as ``bench.rig`` (they put the
repository root on sys.path; bench/ itself stays off it, see bench/dispatch.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ai_factory.core.models import SETTLED_STATUSES
from ai_factory.core.secrets import FACTORY_SECRETS
from ai_factory.sim import SimServer, sim_env
from tests.support.net import free_port

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 30.0
# The caller's own factory settings must not leak into the bench's factory.
_DROPPED_PREFIXES = ("FACTORY_", "GITHUB_", "ANTHROPIC_", "CLAUDE_")
_DROPPED = FACTORY_SECRETS | {"DATABASE_URL", "REDIS_URL", "REPOS", "ORCHESTRATOR_URL", "HOST",
                              "PORT", "MAX_WORKERS", "COOLDOWN_SECONDS", "DAILY_BUDGET"}  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def sample_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository on `main` with a README (and `files`), one commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Bench")
    git(path, "config", "user.email", "bench@localhost")
    (path / "README.md").write_text("# Bench\n\nA sample project for the benches.\n")
    for name, text in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Initial commit")
    return path


class BenchFactory:
    """A real orchestrator with real workers against `sim`; use as a context manager."""

    def __init__(self, sim: SimServer, *, oauth: bool = False, **settings: object) -> None:
        self.sim = sim
        self.oauth = oauth
        self.settings = {key.upper(): str(value) for key, value in settings.items()}
        self.base = Path(tempfile.mkdtemp(prefix="factory-bench-"))
        self.base.chmod(0o755)  # a worker running as root runs the agent as FACTORY_AGENT_USER
        self.db_name = f"factory_bench_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "factory.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_DROPPED_PREFIXES) and k.upper() not in _DROPPED}  # fmt: skip
        env.update(sim_env(self.sim.url, oauth=self.oauth,
                           config_dir=str(self.base / "claude-config")))  # fmt: skip
        base, _, _ = ADMIN_URL.rpartition("/")
        env.update({
            "DATABASE_URL": f"{base}/{self.db_name}", "FACTORY_HOME": str(self.base / "home"),
            "HOST": "127.0.0.1", "PORT": str(self.port), "ORCHESTRATOR_URL": self.url,
            "COOLDOWN_SECONDS": "0", "HEARTBEAT_INTERVAL_SECONDS": "2",
            "HEALTH_CHECK_INTERVAL_SECONDS": "1", "DAILY_BUDGET": "100000", "LOG_LEVEL": "INFO",
        })  # fmt: skip
        env.update(self.settings)
        return env

    def __enter__(self) -> BenchFactory:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ai_factory", "orchestrator"],
                cwd=self.base, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if self.http.get("/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the factory did not start:\n{self.tail()}")
            time.sleep(0.3)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.http.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    # --- the API ---

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def submit(self, repo: Path, spec: str) -> str:
        response = self.http.post("/api/work", json={"repo": str(repo), "spec": spec})
        if response.status_code not in (200, 201):
            raise RuntimeError(f"submit refused ({response.status_code}): {response.text}")
        return str(response.json()["id"])

    def wait_settled(self, ids: list[str], *, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            items = [self.get(f"/api/work/{i}") for i in ids]
            if all(item["status"] in SETTLED_STATUSES for item in items):
                return items
            if time.monotonic() > deadline:
                states = sorted({item["status"] for item in items})
                raise RuntimeError(f"items not settled in {timeout_s:g} s ({states}):\n{self.tail()}")
            time.sleep(0.5)

    def logs(self, item_id: str) -> str:
        text, offset = [], 0
        while True:
            chunk = self.get(f"/api/work/{item_id}/logs", offset=offset)
            text.append(chunk["text"])
            if not chunk["text"] or chunk["nextOffset"] == offset:
                return "".join(text)
            offset = chunk["nextOffset"]

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

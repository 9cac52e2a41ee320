"""A `factory up` started by a test, as the test sees it (`Factory`), and the small git
repository it works on (`make_repo`)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ai_factory.sim import SimServer


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def make_repo(path: Path) -> Path:
    """A small git repository on `main` for the workers to branch from."""
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Browser Test")
    _git(path, "config", "user.email", "browser@example.invalid")
    (path / "README.md").write_text("# Widgets\n\nA sample project for the dashboard tests.\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Initial commit")
    return path


@dataclass
class Factory:
    url: str
    token: str
    repo: Path
    home: Path
    sim: SimServer
    log_path: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def submit(self, spec: str, **fields: Any) -> dict[str, Any]:
        return self.api("POST", "/api/work", json={"repo": str(self.repo), "spec": spec, **fields})

    def wait_for(self, what: str, check, timeout_s: float = 180.0, every_s: float = 0.3) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; factory log:\n{self.tail()}")
            time.sleep(every_s)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

"""Browser-test fixtures: a real factory (`factory up`) with the scripted model, and Chromium.

One factory per test module: `factory up` as a subprocess on a fresh database of the
machine's PostgreSQL, a temporary FACTORY_HOME, FACTORY_API_TOKEN set, the scripted
model (`SimServer`, in this process) behind ANTHROPIC_BASE_URL, COOLDOWN_SECONDS=0,
and a local git repository as the target. The factory's own scheduler spawns real
workers that drive the real `claude` binary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ai_factory.sim import SimServer, sim_env
from tests.support.net import free_port
from tests.support.pg import PgServer
from tests.support.processes import stop_gracefully, wait_until_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TOKEN = "browser-test-t0ken"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
START_TIMEOUT_S = 90.0


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


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer() as server:
        yield server


@pytest.fixture(scope="module")
def factory(
    tmp_path_factory: pytest.TempPathFactory, system_pg: PgServer, sim: SimServer
) -> Iterator[Factory]:
    base = tmp_path_factory.mktemp("dashboard")
    database_url = system_pg.create_database()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACTORY_", "GITHUB_", "ANTHROPIC_", "CLAUDE_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "REPOS", "ORCHESTRATOR_URL")
    }
    env.update(sim_env(sim.url, config_dir=str(base / "claude-config")))
    env.update({
        "DATABASE_URL": database_url,
        "FACTORY_HOME": str(base / "home"),
        "FACTORY_API_TOKEN": TOKEN,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MAX_WORKERS": "2",
        "COOLDOWN_SECONDS": "0",
        "HEARTBEAT_INTERVAL": "1",
        "HEALTH_CHECK_INTERVAL": "1",
        "MAX_ITERATIONS": "10",
        "STUCK_AFTER": "3",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    })  # fmt: skip
    log_path = base / "factory-up.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_factory", "up"],
            env=env,
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Factory(
        url=f"http://127.0.0.1:{port}",
        token=TOKEN,
        repo=make_repo(base / "widgets"),
        home=base / "home",
        sim=sim,
        log_path=log_path,
    )
    try:
        wait_until_healthy(running.url, proc, timeout_s=START_TIMEOUT_S, output=running.tail)
        yield running
    finally:
        stop_gracefully(proc)
        print(running.tail(120))  # shown by pytest when a test failed
        system_pg.drop_database(database_url)


@pytest.fixture(scope="module")
def browser(factory: Factory) -> Iterator[Any]:
    # After the factory: Playwright's sync API keeps an event loop running in this thread,
    # and the database set-up uses asyncio.run.
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def signed_in(browser: Any, factory: Factory) -> dict[str, Any]:
    """The storage state of a browser that signed in once with the API token."""
    context = browser.new_context(base_url=factory.url, viewport=LAPTOP)
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=token]", factory.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{factory.url}/")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser: Any, factory: Factory, signed_in: dict[str, Any]) -> Iterator[Any]:
    """A signed-in page at laptop width; JavaScript errors fail the test."""
    context = browser.new_context(base_url=factory.url, viewport=LAPTOP, storage_state=signed_in)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot: to docs/screenshots with UPDATE_SCREENSHOTS=1, else to a temp folder
    (so an ordinary test run leaves the work tree clean)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else _scratch()
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def _scratch() -> Path:
    return Path(tempfile.gettempdir()) / "factory-dashboard-screenshots"

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_factory.sim import SimServer, sim_env
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP
from tests.support.factory_up import Factory, make_repo
from tests.support.net import free_port
from tests.support.pg import PgServer
from tests.support.processes import stop_gracefully, wait_until_healthy

TOKEN = "browser-test-t0ken"
START_TIMEOUT_S = 90.0


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
        "LOCAL_REPO_ROOTS": str(base),
        "FACTORY_API_TOKEN": TOKEN,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MAX_WORKERS": "2",
        "COOLDOWN_SECONDS": "0",
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        "HEALTH_CHECK_INTERVAL_SECONDS": "1",
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

"""`factory intake` as its own process (a compose service): over the API, with the API token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ai_factory.sim import SimServer, sim_env
from tests.github_standin import GitHubStandin
from tests.support.intake_rig import MAINTAINER, REPO, TASKS, intake_settings
from tests.support.server import ServerThread

API_TOKEN = "factory-api-token-for-tests"


def _env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACTORY_", "GITHUB_", "ANTHROPIC_", "CLAUDE_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "REPOS")
    }
    env.update(values)
    return env


def test_factory_intake_needs_github_token_and_repos(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ai_factory", "intake"],
        env=_env(FACTORY_HOME=str(tmp_path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "GITHUB_TOKEN and REPOS" in done.stderr


def test_factory_intake_submits_over_the_api_and_stops_on_sigterm(
    tmp_path: Path, database_url: str, standin: GitHubStandin, sim: SimServer
) -> None:
    settings = intake_settings(tmp_path, database_url, standin, factory_api_token=API_TOKEN)
    server = ServerThread(settings).start()
    number = standin.create_issue(
        REPO, "Greeting", TASKS, labels=["ai-factory"], labeled_by=MAINTAINER
    )
    env = _env(
        FACTORY_HOME=str(tmp_path / "intake-home"),
        ORCHESTRATOR_URL=server.url,
        FACTORY_API_TOKEN=API_TOKEN,
        GITHUB_TOKEN=standin.token,
        GITHUB_API_URL=standin.api_url,
        REPOS=REPO,
        POLL_INTERVAL="1000",
        INTAKE_WRITE_INTERVAL_S="0.05",
        LOG_LEVEL="DEBUG",
        **sim_env(sim.url, config_dir=str(tmp_path / "claude")),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_factory", "intake"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while standin.labels(REPO, number) != ["ai-factory-processing"]:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "factory intake did not pick the issue up"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        items = httpx.get(
            f"{server.url}/api/work",
            params={"sourceId": str(number)},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ).json()
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()

    assert proc.returncode == 0, output
    assert "intake.stopped" in output
    assert len(items) == 1 and items[0]["repo"] == standin.git_url(REPO)
    assert standin.token not in output and API_TOKEN not in output

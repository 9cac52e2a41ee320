"""`python -m ai_factory worker` as a real subprocess with the spawner's environment contract:
WORKER_ID, WORKER_TOKEN, WORK_ITEM (camelCase JSON), ORCHESTRATOR_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ai_factory.sim import SimServer
from tests.e2e.conftest import Origin, claude_env, item_detail, spawn_record, spec_of, submit
from tests.support.server import ServerThread

pytestmark = pytest.mark.e2e

FAKE_GITHUB_TOKEN = "ghp_" + "f" * 36


def test_spawned_worker_process_completes_and_hides_factory_secrets_from_the_agent(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of(
        "Create `a.txt` containing `a`", "Run `env | sort > agent-env.txt`",
    ))  # fmt: skip
    spawned = spawn_record(api, item)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "FACTORY_"))}
    env.update(claude_env(sim, tmp_path))
    env.update({
        "WORKER_ID": str(spawned.worker_id),
        "WORKER_TOKEN": spawned.token,
        "WORK_ITEM": spawned.item.model_dump_json(by_alias=True),
        "ORCHESTRATOR_URL": api.url,
        "FACTORY_HOME": str(tmp_path / "worker-home"),
        "HEARTBEAT_INTERVAL": "1",
        "GITHUB_TOKEN": FAKE_GITHUB_TOKEN,
        "CLAUDE_CODE_MAX_RETRIES": "9",
        "LOG_LEVEL": "INFO",
        "CLAUDECODE": "1",  # as inside a Claude Code session: a nested CLI would refuse to start
    })  # fmt: skip

    done = subprocess.run(
        [sys.executable, "-m", "ai_factory", "worker"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, check=False, capture_output=True, text=True, timeout=240,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout
    for line in (
        "iteration.started number=1",
        "agent.tool tool=Write file=a.txt",
        "iteration.finished number=2 outcome=progress tasks=2/2",
        "worker.delivered",
    ):
        assert line in log, line
    assert spawned.token not in log + done.stderr and FAKE_GITHUB_TOKEN not in log + done.stderr
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed" and detail["iterations"] == 2
    branch = detail["prUrl"].split("#", 1)[1]
    agent_env = dict(
        line.split("=", 1)
        for line in origin.show(branch, "agent-env.txt").splitlines()
        if "=" in line
    )
    assert agent_env["ANTHROPIC_BASE_URL"] == sim.url, "the worker's environment reaches Claude"
    assert agent_env.get("WORKER_TOKEN", "") == "" and agent_env.get("GITHUB_TOKEN", "") == ""
    assert agent_env.get("WORK_ITEM", "") == ""
    assert agent_env["CLAUDE_CODE_MAX_RETRIES"] == "4", "the CLI's own retries are capped"

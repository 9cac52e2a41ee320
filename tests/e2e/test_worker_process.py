"""`python -m ai_factory worker` as a real subprocess with the spawner's environment contract
(WORKER_ID, WORKER_TOKEN, WORK_ITEM as camelCase JSON, ORCHESTRATOR_URL), delivering to the
GitHub stand-in: it pushes with GITHUB_TOKEN and opens the pull request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai_factory.core.launch_secrets import SECRETS_FD_VAR, secrets_pipe
from ai_factory.sim import SimServer
from tests.github_standin import GitHubStandin
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.claude_env import claude_env
from tests.support.ledger import Spawned, spawn_record
from tests.support.polling import wait_for
from tests.support.server import ServerThread
from tests.support.work_api import events_of, item_detail, spec_of, submit

pytestmark = pytest.mark.e2e

REPO = "acme/widgets"


def worker_env(
    api: ServerThread, sim: SimServer, github: GitHubStandin, spawned: Spawned, tmp_path: Path,
    **extra: str,
) -> tuple[dict[str, str], int]:
    """The environment the process spawner gives a worker, and the secrets' pipe to pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "FACTORY_"))}
    env.update(claude_env(sim, tmp_path))
    # As the process spawner does it: the secrets through a pipe, never in the environment.
    secrets = secrets_pipe({"WORKER_TOKEN": spawned.token, "GITHUB_TOKEN": github.token})
    env.update(
        {
            "WORKER_ID": str(spawned.worker_id),
            SECRETS_FD_VAR: str(secrets),
            "WORK_ITEM": spawned.item.model_dump_json(by_alias=True),
            "ORCHESTRATOR_URL": api.url,
            "FACTORY_HOME": str(tmp_path / "worker-home"),
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "GITHUB_API_URL": github.api_url,
            "CLAUDE_CODE_MAX_RETRIES": "9",
            "LOG_LEVEL": "INFO",
            "CLAUDECODE": "1",  # as inside a Claude Code session: a nested CLI would refuse to start
            **extra,
        }
    )
    return env, secrets


def test_spawned_worker_process_opens_a_pull_request_and_hides_secrets_from_the_agent(
    api: ServerThread,
    sim: SimServer,
    github_standin: GitHubStandin,  # noqa: F811
    tmp_path: Path,
) -> None:
    github = github_standin
    github.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    item = submit(
        api,
        github.git_url(REPO),
        spec_of("Create `a.txt` containing `a`", "Run `env | sort > agent-env.txt`"),
    )
    spawned = spawn_record(api, item)
    env, secrets = worker_env(api, sim, github, spawned, tmp_path)

    try:
        done = subprocess.run(
            [sys.executable, "-m", "ai_factory", "worker"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            pass_fds=(secrets,),
        )
    finally:
        os.close(secrets)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for line in (
        "iteration.started number=1",
        "agent.tool tool=Write file=a.txt",
        "iteration.finished number=2 outcome=progress tasks=2/2",
        "worker.delivered",
    ):
        assert line in done.stdout, line
    assert spawned.token not in output and github.token not in output
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed" and detail["iterations"] == 2
    [pull] = github.pulls(REPO)
    assert detail["prUrl"] == f"{github.web_url}/{REPO}/pull/{pull.number}"
    assert pull.pull is not None
    branch = pull.pull.head_ref
    assert github.commit_messages(REPO, branch)[:2] == [
        "feat: Run `env | sort > agent-env.txt`",
        "feat: Create `a.txt` containing `a`",
    ]
    listing = (github.read_file(REPO, branch, "agent-env.txt") or b"").decode()
    agent_env = dict(line.split("=", 1) for line in listing.splitlines() if "=" in line)
    assert agent_env["ANTHROPIC_BASE_URL"] == sim.url, "the worker's environment reaches Claude"
    for hidden in ("WORKER_TOKEN", "GITHUB_TOKEN", "WORK_ITEM"):
        assert agent_env.get(hidden, "") == "", hidden
    assert github.token not in listing and spawned.token not in listing
    assert agent_env["CLAUDE_CODE_MAX_RETRIES"] == "4", "the CLI's own retries are capped"


def test_a_second_sigterm_stops_a_worker_in_its_gate_at_once(
    api: ServerThread,
    sim: SimServer,
    github_standin: GitHubStandin,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The first signal waits for the loop's next step; a gate of two minutes is not one.
    The second stops the worker now, its gate with it, and nothing is pushed."""
    github = github_standin
    github.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    item = submit(api, github.git_url(REPO), spec_of("Create `a.txt` containing `a`"))
    spawned = spawn_record(api, item)
    gate = "sleep 119.713"  # a duration no other process uses
    env, secrets = worker_env(api, sim, github, spawned, tmp_path, FACTORY_TEST_COMMAND=gate)
    log = (tmp_path / "worker.log").open("w")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_factory", "worker"], env=env, cwd=tmp_path,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(secrets,),
        )  # fmt: skip
    finally:
        os.close(secrets)
    try:
        wait_for(lambda: any(e["data"].get("phase") == "gate"
                             for e in events_of(item_detail(api, item.id), "phase")),
                 timeout=120, what="the gate")  # fmt: skip

        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None, "the first signal waits for the loop's next step"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        leftover = subprocess.run(["pkill", "-f", gate], check=False).returncode == 0

    output = (tmp_path / "worker.log").read_text()
    assert code == 3, output[-4000:]
    assert "worker.stopping_now" in output
    assert not leftover, "the gate outlived its worker"
    assert github.pulls(REPO) == [] and list(github.branches(REPO)) == ["main"]

"""A worker killed at the worst moments, then retried: the work is done exactly once.

Real `factory worker` processes, the real `claude` binary against the scripted model,
real git. The scripted model holds its reply at the step named by the scenario's
`hold_before` (the `git commit`, or the SPEC.md box), the test SIGKILLs the worker's
process group there, the orchestrator's ledger requeues the item as the health check
would, and a second worker takes it over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ai_factory.sim import Scenario, SimServer
from tests.support.claude_env import claude_env
from tests.support.ledger import Spawned, spawn_record
from tests.support.origin import Origin, git
from tests.support.server import ServerThread
from tests.support.work_api import item_detail, spec_of, submit

pytestmark = pytest.mark.e2e

SPEC = spec_of("Append `line` to `log.txt`", "Create `b.txt` containing `b`")


def worker_process(api: ServerThread, spawned: Spawned, sim: SimServer, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "FACTORY_"))}
    env.update(claude_env(sim, home))
    env.update(
        {
            "WORKER_ID": str(spawned.worker_id),
            "WORKER_TOKEN": spawned.token,
            "WORK_ITEM": spawned.item.model_dump_json(by_alias=True),
            "ORCHESTRATOR_URL": api.url,
            "FACTORY_HOME": str(home),
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ai_factory", "worker"],
        env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def kill_when_held(worker: subprocess.Popen[str], sim: SimServer) -> None:
    assert sim.held.wait(120), "the worker never reached the held step"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(30)


def requeue(api: ServerThread, spawned: Spawned) -> None:
    """What the health check does once the dead worker's process is gone."""
    assert api.services is not None
    api.call(api.services.ledger.requeue(spawned.worker_id, reason="worker process is gone"))


def finish(api: ServerThread, item_id, sim: SimServer, home: Path) -> str:
    """A second attempt, on the same host, to the end; its output."""
    sim.set_scenario(Scenario())
    second = spawn_record(api, api.call(api.services.ledger.item(item_id)))  # type: ignore[union-attr]
    worker = worker_process(api, second, sim, home)
    output, _ = worker.communicate(timeout=240)
    assert worker.returncode == 0, output[-6000:]
    return output


def test_killed_between_write_and_commit_the_retry_writes_the_line_once(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    item = submit(api, origin.path, SPEC)
    sim.set_scenario(Scenario(hold_before="commit"))
    first = spawn_record(api, item)
    kill_when_held(worker_process(api, first, sim, home), sim)
    worktree = home / "worktrees" / str(item.id)
    assert (worktree / "log.txt").read_text() == "line\n"  # written, never committed
    requeue(api, first)

    output = finish(api, item.id, sim, home)

    detail = item_detail(api, item.id)
    assert detail["status"] == "completed" and detail["attempts"] == 2, detail
    branch = detail["prUrl"].split("#", 1)[1]
    assert origin.show(branch, "log.txt") == "line\n"
    assert origin.log(branch) == [
        "feat: Create `b.txt` containing `b`",
        "feat: Append `line` to `log.txt`",
    ]
    assert "workspace.leftovers_set_aside ref=refs/factory-leftovers/" in output
    mirror = next((home / "mirrors").glob("*.git"))
    saved = git(mirror, "for-each-ref", "--format=%(refname)", "refs/factory-leftovers/").split()
    assert len(saved) == 1 and git(mirror, "show", f"{saved[0]}:log.txt") == "line\n"
    first_prompt = next(r for r in sim.main_requests if "earlier attempt was interrupted" in str(r.body))
    assert saved[0] in str(first_prompt.body)


def test_killed_between_commit_and_checkbox_the_retry_does_not_redo_the_task(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    item = submit(api, origin.path, SPEC)
    sim.set_scenario(Scenario(hold_before="check"))
    first = spawn_record(api, item)
    kill_when_held(worker_process(api, first, sim, home), sim)
    requeue(api, first)

    output = finish(api, item.id, sim, home)

    detail = item_detail(api, item.id)
    assert detail["status"] == "completed", detail
    branch = detail["prUrl"].split("#", 1)[1]
    assert origin.log(branch) == [
        "feat: Create `b.txt` containing `b`",
        "feat: Append `line` to `log.txt`",
    ]
    assert origin.show(branch, "log.txt") == "line\n"
    assert "tasks_recorded=[1]" in output
    iterations = [e for e in detail["events"] if e["kind"] == "iteration"]
    assert [e["data"]["outcome"] for e in iterations][-1] == "progress"


def test_a_branch_that_already_holds_every_task_is_delivered_without_the_agent(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    """Another host pushed every task and died before delivering: the retry delivers."""
    item = submit(api, origin.path, SPEC)
    branch = f"factory/{str(item.id)[:8]}"
    elsewhere = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", str(origin.path), str(elsewhere))
    git(elsewhere, "checkout", "-q", "-b", branch)
    (elsewhere / "log.txt").write_text("line\n")
    (elsewhere / "b.txt").write_text("b\n")
    for n, name in ((1, "log.txt"), (2, "b.txt")):
        git(elsewhere, "add", name)
        git(elsewhere, "-c", "user.name=W", "-c", "user.email=w@x", "commit", "-q",
            "-m", f"feat: {name}", "-m", f"Factory-Task: {n}")  # fmt: skip
    git(elsewhere, "push", "-q", "origin", branch)
    home = tmp_path / "home"
    home.mkdir()

    output = finish(api, item.id, sim, home)

    detail = item_detail(api, item.id)
    assert detail["status"] == "completed" and detail["iterations"] == 0, detail
    assert "all 2 tasks were already done on the branch" in output
    assert not sim.main_requests  # the agent never ran
    assert origin.log(branch) == ["feat: b.txt", "feat: log.txt"]

"""The worker end to end: the real `claude` binary (through claude-agent-sdk) against the
scripted model, real git (a bare origin the worker pushes to), and the real orchestrator
API on a fresh database. The worker runs in-process here; test_worker_process.py runs it
as `python -m ai_factory worker`."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from ai_factory.core.models import WorkItem
from ai_factory.sim import Scenario, ScenarioName, SimServer
from ai_factory.worker.main import LaunchEnv, WorkerOptions, WorkerProcess
from ai_factory.worker.run_outcome import LimitPolicy
from tests.support.claude_env import claude_env
from tests.support.ledger import spawn_record
from tests.support.origin import Origin
from tests.support.server import ServerThread, reserved_port_server
from tests.support.settings import worker_settings
from tests.support.work_api import (
    api_call,
    events_of,
    item_detail,
    lock_as_another_worker,
    spec_of,
    submit,
)

pytestmark = pytest.mark.e2e

FAST = LimitPolicy(reset_margin_s=0.5, fallback_wait_s=5, backoff_base_s=0.2, backoff_cap_s=1)


def spawned_worker(
    api: ServerThread,
    item: WorkItem,
    tmp_path: Path,
    sim: SimServer,
    *,
    oauth: bool = False,
    max_retries: int = 0,
    **settings: object,
) -> WorkerProcess:
    """A worker set up as the spawner would (worker row + token), run in this process."""
    spawned = spawn_record(api, item)
    launch = LaunchEnv(api.url, spawned.worker_id, spawned.token, spawned.item)
    options = WorkerOptions(
        policy=FAST, agent_env=claude_env(sim, tmp_path, oauth=oauth, max_retries=max_retries)
    )
    return WorkerProcess(
        settings=worker_settings(tmp_path, api, **settings), launch=launch, options=options
    )


def branch_of(detail: dict[str, Any]) -> str:
    return detail["prUrl"].split("#", 1)[1]


def prompts(sim: SimServer) -> list[str]:
    """The user prompt of each Claude Code session, in order (its first request's user text)."""
    from ai_factory.sim.conversation import Conversation

    found = []
    for record in sim.main_requests:
        conv = Conversation(record.body or {})
        if not any(m.get("role") == "assistant" for m in conv.messages):
            found.append(conv.prompt)
    return found


async def test_three_file_tasks_end_on_a_branch_of_three_commits(
    api: ServerThread, sim: SimServer, tmp_path: Path
) -> None:
    """Also: stored learnings reach the prompt, and a Learn task's line comes back."""
    origin = Origin.create(tmp_path, {"CLAUDE.md": "# Repo rules\n\nrepo-rule-marker-7f3a\n"})
    learning = {"repo": str(origin.path), "content": "Files named hello are greetings"}
    api_call(api, "POST", "/api/learnings", json=learning)
    item = submit(api, origin.path, spec_of(
        "Create `hello.txt` containing `hello`",
        "Create `src/app.py` containing `print(1)`",
        "Append `world` to `hello.txt`",
        "Learn `greetings end with a newline`",
    ))  # fmt: skip

    code = await spawned_worker(api, item, tmp_path, sim).run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed", detail
    branch = branch_of(detail)
    assert origin.log(branch) == [
        # A task done without a change still leaves its mark on the branch, so that a
        # later attempt knows it is done (the worker adds it; see worker/branch_progress).
        "chore: checked off in SPEC.md: Learn `greetings end with a newline`",
        "feat: Append `world` to `hello.txt`",
        "feat: Create `src/app.py` containing `print(1)`",
        "feat: Create `hello.txt` containing `hello`",
    ]
    assert origin.trailers(branch) == ["4", "3", "2", "1"]
    assert origin.files(branch) == ["hello.txt", "src/app.py"]
    assert origin.show(branch, "hello.txt") == "hello\nworld\n"
    tree = origin.tree(branch)
    assert "SPEC.md" not in tree and not any(p.startswith(".ai/") for p in tree)
    assert detail["iterations"] == 4 and detail["tokens"] > 0
    assert detail["costUsd"] == 0  # the scripted model is free, whatever the CLI would charge
    iterations = events_of(detail, "iteration")
    assert [e["data"]["iteration"] for e in iterations] == [1, 2, 3, 4]
    assert [e["data"]["tasksDone"] for e in iterations] == [1, 2, 3, 4]
    assert all(e["data"]["outcome"] == "progress" for e in iterations)
    assert iterations[0]["data"]["filesEdited"] == ["hello.txt", "SPEC.md"]
    first = str(sim.main_requests[0].body)
    assert "# AI Factory worker" in first, "the protocol is appended to the system prompt"
    assert "repo-rule-marker-7f3a" in first, "the repository's own CLAUDE.md still applies"
    assert "Files named hello are greetings" in prompts(sim)[0]
    found = api_call(api, "GET", "/api/learnings", params={"repo": str(origin.path)})
    assert "greetings end with a newline" in [row["content"] for row in found]


async def test_stuck_agent_is_reported_stuck_after_stuck_after_iterations(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    sim.set_scenario(Scenario(name=ScenarioName.STUCK))

    code = await spawned_worker(api, item, tmp_path, sim, stuck_after=2).run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck"
    assert "no new commit and no newly checked task in 2 iterations" in detail["error"]
    assert "0/1 tasks done; left: Create `a.txt`" in detail["error"]
    assert [e["data"]["outcome"] for e in events_of(detail, "iteration")] == ["no_progress"] * 2
    assert origin.branches() == ["main"], "nothing was committed, so nothing was pushed"


async def test_max_iterations_pushes_the_work_so_far_and_says_what_is_left(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of(
        "Create `a.txt` containing `a`", "Create `b.txt` containing `b`", "Create `c.txt` containing `c`",
    ))  # fmt: skip

    code = await spawned_worker(api, item, tmp_path, sim, max_iterations=2).run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck"
    assert "reached MAX_ITERATIONS=2; 2/3 tasks done; left: Create `c.txt`" in detail["error"]
    branch = next(b for b in origin.branches() if b.startswith("factory/"))
    assert branch in detail["error"]
    assert origin.files(branch) == ["a.txt", "b.txt"]


async def test_stuck_note_stops_the_loop_with_its_reason(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    """Also: a worker started by hand (no WORKER_ID) claims the item by its id."""
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    sim.set_scenario(Scenario(name=ScenarioName.STUCK_FILE))
    launch = LaunchEnv(api.url, item_id=str(item.id))
    worker = WorkerProcess(
        settings=worker_settings(tmp_path, api),
        launch=launch,
        options=WorkerOptions(policy=FAST, agent_env=claude_env(sim, tmp_path)),
    )

    code = await worker.run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck" and detail["workerId"] is not None
    assert "the agent wrote .ai/stuck.md" in detail["error"]
    assert "cannot make progress on: Create `a.txt`" in detail["error"]
    assert len(events_of(detail, "iteration")) == 1


async def test_usage_limit_waits_for_the_reset_and_resumes_the_same_iteration(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    """OAuth login, so the CLI emits rate-limit events: a warning during iteration 1, then a
    rejection in iteration 2, which is run again after the (short) reset."""
    item = submit(
        api, origin.path, spec_of("Create `a.txt` containing `a`", "Create `b.txt` containing `b`")
    )
    sim.set_scenario(Scenario(
        name=ScenarioName.USAGE_LIMIT, limit_after=8, reset_after_s=3, warn_utilization=0.5,
    ))  # fmt: skip

    code = await spawned_worker(api, item, tmp_path, sim, oauth=True).run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed"
    limits = [e["data"] for e in events_of(detail, "limit")]
    # Each run reports its first warning at once (the factory goes single file) and, when
    # it ends, the utilization it reached; the rejected run its refusal; nothing after it.
    kinds = [d["status"] for d in limits]
    assert kinds[-1] == "rejected" and set(kinds[:-1]) == {"allowed_warning"}, kinds
    warned = [d["utilization"] for d in limits[:-1]]
    assert warned and warned == sorted(set(warned)) and 0.5 <= warned[0] and warned[-1] < 1
    assert limits[1]["rateLimitType"] == "five_hour" and limits[1]["resetsAt"]
    phases = [e["data"]["phase"] for e in events_of(detail, "phase")]
    assert "limited" in phases and phases[phases.index("limited") + 1] == "running"
    assert detail["iterations"] == 2, "the limited run did not count as an iteration"
    assert [e["data"]["iteration"] for e in events_of(detail, "iteration")] == [1, 2]
    statuses = [r.status for r in sim.main_requests]
    assert statuses[8] == 429 and statuses[-1] == 200
    assert origin.files(branch_of(detail)) == ["a.txt", "b.txt"]


async def test_overloaded_api_is_retried_without_counting_iterations(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    sim.set_scenario(Scenario(name=ScenarioName.OVERLOADED, overloaded_count=2))

    code = await spawned_worker(api, item, tmp_path, sim, max_retries=0).run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed" and detail["iterations"] == 1
    assert [r.status for r in sim.main_requests][:3] == [529, 529, 200]


async def test_gate_failure_is_fed_back_and_fixed(
    api: ServerThread, sim: SimServer, tmp_path: Path
) -> None:
    gate = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"]
    origin = Origin.create(tmp_path, {
        "test_app.py": "from app import ANSWER\n\n\ndef test_answer():\n    assert ANSWER == 42\n",
        ".factory.toml": "[gates]\ntest = [" + ", ".join(f'"{part}"' for part in gate) + "]\n",
    })  # fmt: skip
    item = submit(api, origin.path, spec_of(
        "Create `app.py` containing `ANSWER = 42`", "Create `b.txt` containing `b`",
    ))  # fmt: skip
    sim.set_scenario(Scenario(name=ScenarioName.GATE))

    code = await spawned_worker(api, item, tmp_path, sim, factory_test_command="false").run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed"
    branch = branch_of(detail)
    assert origin.show(branch, "app.py") == "ANSWER = 42\n"
    assert origin.log(branch)[-2:] == [
        "fix: Create `app.py` containing `ANSWER = 42`",
        "feat: Create `app.py` containing `ANSWER = 42`",
    ]
    outcomes = [e["data"]["outcome"] for e in events_of(detail, "iteration")]
    assert outcomes[0] == "gate_failed" and outcomes[-1] == "progress"
    second = prompts(sim)[1]
    assert "## Quality gate failed" in second and "NameError" in second and "app.py" in second
    assert "Quality gate failed" not in prompts(sim)[0]


async def test_edit_of_a_file_locked_by_another_worker_is_denied(
    api: ServerThread, sim: SimServer, tmp_path: Path
) -> None:
    origin = Origin.create(tmp_path, {"a.txt": "original\n"})
    lock_as_another_worker(api, origin.path, "a.txt")
    item = submit(api, origin.path, spec_of("Replace `original` with `changed` in `a.txt`"))

    code = await spawned_worker(api, item, tmp_path, sim, stuck_after=2).run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck"
    conflicts = events_of(detail, "lock_conflict")
    assert conflicts and conflicts[0]["data"]["files"] == ["a.txt"]
    assert origin.branches() == ["main"] and origin.show("main", "a.txt") == "original\n"
    refused = [r for r in sim.main_requests if "being edited by another worker" in str(r.body)]
    assert refused, "Claude was told why its edit was refused"
    assert "a.txt was locked by another worker" in prompts(sim)[1]


async def test_orchestrator_down_mid_run_the_worker_goes_on_and_reports_when_back(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of(
        "Create `notes.txt` containing `one`", "Append `two` to `notes.txt`",
    ))  # fmt: skip
    worker = spawned_worker(api, item, tmp_path, sim)
    running = asyncio.create_task(worker.run())
    while not events_of(await asyncio.to_thread(item_detail, api, item.id), "iteration"):
        assert not running.done(), running
        await asyncio.sleep(0.2)
    api.stop()  # the orchestrator goes away after iteration 1
    while not any(b.startswith("factory/") for b in origin.branches()):
        assert not running.done(), "the worker must wait for the orchestrator to report"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    assert not running.done()
    back = reserved_port_server(api.settings, api.port).start()
    try:
        code = await asyncio.wait_for(running, timeout=120)
        detail = item_detail(back, item.id)
    finally:
        back.stop()

    assert code == 0
    assert detail["status"] == "completed" and detail["iterations"] == 2
    assert [e["data"]["iteration"] for e in events_of(detail, "iteration")] == [1, 2]
    assert origin.show(branch_of(detail), "notes.txt") == "one\ntwo\n"


async def test_worker_error_mid_run_fails_the_item_and_keeps_the_work(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in the worker after iteration 1 (injected): failed, with iteration 1's commit
    pushed and the count that was really reported, not a crash that loses the work."""
    from ai_factory.worker import loop

    real = loop.iteration_outcome
    calls = 0

    def breaks_on_the_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("injected bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "iteration_outcome", breaks_on_the_second)
    item = submit(api, origin.path, spec_of(
        "Create `a.txt` containing `a`", "Create `b.txt` containing `b`", "Create `c.txt` containing `c`",
    ))  # fmt: skip

    code = await spawned_worker(api, item, tmp_path, sim).run()

    assert code == 1
    detail = item_detail(api, item.id)
    assert detail["status"] == "failed"
    assert "worker error: RuntimeError: injected bug" in detail["error"]
    branch = next(b for b in origin.branches() if b.startswith("factory/"))
    assert branch in detail["error"], "the error says where the work so far is"
    assert origin.files(branch) == ["a.txt", "b.txt"]
    assert [e["data"]["iteration"] for e in events_of(detail, "iteration")] == [1]


async def test_cancelled_item_stops_the_worker_without_pushing(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(
        api, origin.path, spec_of("Create `a.txt` containing `a`", "Create `b.txt` containing `b`")
    )
    sim.set_scenario(Scenario(name=ScenarioName.SLOW, delay_s=4))
    running = asyncio.create_task(spawned_worker(api, item, tmp_path, sim).run())
    while (await asyncio.to_thread(item_detail, api, item.id))["status"] != "running":
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)

    await asyncio.to_thread(api_call, api, "POST", f"/api/work/{item.id}/cancel")
    code = await asyncio.wait_for(running, timeout=60)

    assert code == 3
    assert item_detail(api, item.id)["status"] == "cancelled"
    assert origin.branches() == ["main"]


async def test_item_cancelled_while_its_gate_runs_is_neither_pushed_nor_reported(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    """The agent finishes, the gate (slow) passes afterwards: the cancel in between wins."""
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    gate = shlex.join([sys.executable, "-c", "import time; time.sleep(3)"])
    worker = spawned_worker(api, item, tmp_path, sim, factory_test_command=gate)
    running = asyncio.create_task(worker.run())
    while not any(
        e["data"]["phase"] == "gate"
        for e in events_of(await asyncio.to_thread(item_detail, api, item.id), "phase")
    ):
        assert not running.done(), running
        await asyncio.sleep(0.1)

    await asyncio.to_thread(api_call, api, "POST", f"/api/work/{item.id}/cancel")
    code = await asyncio.wait_for(running, timeout=60)

    assert code == 3
    detail = item_detail(api, item.id)
    assert detail["status"] == "cancelled" and detail.get("prUrl") is None
    assert origin.branches() == ["main"], "nothing is pushed for a cancelled item"


async def test_auth_error_fails_at_once_with_how_to_log_in(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    sim.set_scenario(Scenario(name=ScenarioName.AUTH_ERROR))

    code = await spawned_worker(api, item, tmp_path, sim).run()

    assert code == 1
    detail = item_detail(api, item.id)
    assert detail["status"] == "failed"
    assert "claude setup-token" in detail["error"] and "Invalid API key" in detail["error"]
    assert len(sim.main_requests) == 1, "no retry of an auth error"


async def test_idle_agent_is_cut_and_counted(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    sim.set_scenario(Scenario(name=ScenarioName.SLOW, delay_s=30))

    code = await spawned_worker(
        api, item, tmp_path, sim, iteration_idle_timeout_seconds=1.5, stuck_after=1
    ).run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck" and "no new commit" in detail["error"]
    (iteration,) = events_of(detail, "iteration")
    assert iteration["data"]["outcome"] == "error"
    assert "stopped: idle_timeout" in iteration["reason"]

"""The Ralph loop (`RalphLoop`) on its own, fast: a scripted agent
(tests/support/scripted_driver.py) does real work in a real worktree (`Workspace.prepare`
on a local bare repository), the quality gate is a real command, and the loop reports to
a real orchestrator API on a fresh database, as a worker the scheduler claimed for.

tests/e2e/test_worker.py runs the same loop with the real `claude` binary.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ai_factory.core.models import LimitReport, LimitStatus
from ai_factory.worker.client import Heartbeat, OrchestratorClient, Progress
from ai_factory.worker.gate import QualityGate
from ai_factory.worker.loop import LoopConfig, LoopOutcome, LoopResult, RalphLoop
from ai_factory.worker.run_outcome import LimitPolicy
from ai_factory.worker.workspace import Workspace
from tests.support.ledger import spawn_record
from tests.support.origin import Origin
from tests.support.repos import git
from tests.support.scripted_driver import (
    TURN_INPUT_TOKENS,
    Append,
    Check,
    Commit,
    GiveUp,
    Run,
    ScriptedDriver,
    TransientError,
    UntilStopped,
    UsageLimit,
    Write,
)
from tests.support.server import ServerThread
from tests.support.work_api import events_of, item_detail, spec_of, submit

FAST = LimitPolicy(reset_margin_s=0.05, fallback_wait_s=1, backoff_base_s=0.01, backoff_cap_s=0.05)

A = "Create `a.txt` containing `a`"
B = "Create `b.txt` containing `b`"
C = "Create `c.txt` containing `c`"


def create(task: str, path: str, text: str) -> Run:
    """A run that does one task by the protocol: the file, a commit, the box checked."""
    return Run(Write(path, text), Commit(f"feat: {task}"), Check(task))


def gate(script: str) -> QualityGate:
    return QualityGate(argv=["sh", "-c", script], timeout_s=30)


@dataclass
class Finished:
    """A loop that ended, with what the orchestrator recorded and what is on the branch."""

    result: LoopResult
    workspace: Workspace
    detail: dict[str, Any]  # the item as the API shows it, with its events

    @property
    def reported(self) -> list[dict[str, Any]]:
        """The iteration reports the orchestrator recorded, in order."""
        return [event["data"] for event in events_of(self.detail, "iteration")]

    def commits(self) -> list[str]:
        """Subjects of the branch's commits since its base, newest first."""
        log = git(self.workspace.path, "log", "--format=%s", f"{self.workspace.base_sha}..HEAD")
        return log.splitlines()

    def committed(self, path: str) -> str:
        return git(self.workspace.path, "show", f"HEAD:{path}")


@dataclass
class Worker:
    """What `factory worker` builds around the loop, for one item of `origin`."""

    api: ServerThread
    origin: Origin
    home: Path

    async def run(
        self,
        spec: str,
        driver: ScriptedDriver,
        *,
        gate: QualityGate | None = None,
        max_iterations: int = 10,
        stuck_after: int = 3,
        stop: asyncio.Event | None = None,
        worktree_spec: str | None = None,
        **caps: float,
    ) -> Finished:
        item = submit(self.api, self.origin.path, spec)
        spawned = spawn_record(self.api, item)
        client = OrchestratorClient(
            base_url=self.api.url, worker_id=spawned.worker_id, token=spawned.token
        )
        heartbeat = Heartbeat(client=client, progress=Progress(), interval_s=30)
        try:
            await client.register(item.id, host="test")
            heartbeat.start()
            workspace = await asyncio.to_thread(Workspace.prepare, spawned.item, home=self.home)
            if worktree_spec is not None:  # what the worker finds, whatever was submitted
                (workspace.path / "SPEC.md").write_text(worktree_spec)
            loop = RalphLoop(
                workspace=workspace,
                driver=driver,
                client=client,
                heartbeat=heartbeat,
                gate=gate,
                config=LoopConfig(
                    max_iterations=max_iterations, stuck_after=stuck_after, policy=FAST, **caps
                ),
                stop=stop,
            )
            result = await loop.run()
            assert await client.flush(timeout_s=30), "the loop's reports were not delivered"
        finally:
            await heartbeat.stop()
            await client.close()
        return Finished(result, workspace, item_detail(self.api, item.id))


@pytest.fixture
def worker(api: ServerThread, tmp_path: Path) -> Worker:
    return Worker(api=api, origin=Origin.create(tmp_path), home=tmp_path / "home")


async def test_done_when_every_box_is_checked_and_the_gate_passes(worker: Worker) -> None:
    driver = ScriptedDriver([create(A, "a.txt", "a\n"), create(B, "b.txt", "b\n")])

    done = await worker.run(spec_of(A, B), driver, gate=gate("test -f a.txt"))

    assert done.result.outcome is LoopOutcome.DONE
    assert done.result.reason == "all 2 tasks done; quality gate passed"
    assert [(r["iteration"], r["outcome"], r["tasksDone"]) for r in done.reported] == [
        (1, "progress", 1),
        (2, "progress", 2),
    ]
    assert done.commits() == [f"feat: {B}", f"feat: {A}"]
    assert done.workspace.changed_files() == ["a.txt", "b.txt"], "SPEC.md is never committed"
    assert done.committed("b.txt") == "b\n"
    assert "This is iteration 1 of at most 10" in driver.prompts[0]
    assert f"- [x] {A}\n- [ ] {B}" in driver.prompts[1], "each prompt shows SPEC.md as it is now"


async def test_a_failing_gate_after_the_last_box_keeps_the_loop_going_with_its_output(
    worker: Worker,
) -> None:
    task = "Create `greeting.txt` containing `hello`"
    driver = ScriptedDriver([
        Run(Write("greeting.txt", "helo\n"), Commit("feat: greeting"), Check(task)),
        Run(Write("greeting.txt", "hello\n"), Commit("fix: spell hello")),
    ])  # fmt: skip
    check = (
        'grep -qx hello greeting.txt || { echo "greeting.txt says $(cat greeting.txt)"; exit 1; }'
    )

    done = await worker.run(spec_of(task), driver, gate=gate(check))

    assert done.result.outcome is LoopOutcome.DONE
    assert [r["outcome"] for r in done.reported] == ["gate_failed", "progress"]
    assert "## Quality gate failed" not in driver.prompts[0]
    assert "## Quality gate failed" in driver.prompts[1]
    assert "greeting.txt says helo" in driver.prompts[1]
    assert "Every task is checked off, but the quality gate does not pass yet" in driver.prompts[1]
    assert done.commits() == ["fix: spell hello", "feat: greeting"]
    assert done.committed("greeting.txt") == "hello\n"


async def test_stuck_after_stuck_after_iterations_without_progress(worker: Worker) -> None:
    driver = ScriptedDriver([create(A, "a.txt", "a\n"), Run(), Run(), Run()])

    done = await worker.run(spec_of(A, B), driver, stuck_after=3)

    assert done.result.outcome is LoopOutcome.STUCK
    assert done.result.reason == (
        "no new commit and no newly checked task in 3 iterations (STUCK_AFTER=3);"
        f" 1/2 tasks done; left: {B}"
    )
    assert [r["outcome"] for r in done.reported] == ["progress"] + ["no_progress"] * 3
    assert done.commits() == [f"feat: {A}"]


async def test_stuck_when_the_gate_fails_the_same_way_stuck_after_times(worker: Worker) -> None:
    # Every run commits something (progress), but the gate's failure never changes; its
    # timing line differs each run and does not make it a different failure.
    driver = ScriptedDriver([
        Run(Append("notes.txt", f"attempt {n}\n"), Commit(f"fix: attempt {n}")) for n in (1, 2, 3)
    ])  # fmt: skip
    failing = 'echo "FAILED test_total - assert 2 == 3"; echo "1 failed in 0.$(date +%N)s"; exit 1'

    done = await worker.run(spec_of(A, B), driver, gate=gate(failing), stuck_after=3)

    assert done.result.outcome is LoopOutcome.STUCK
    assert done.result.reason == (
        "the quality gate failed the same way 3 times in a row (STUCK_AFTER=3);"
        f" 0/2 tasks done; left: {A}; {B}"
    )
    assert [r["outcome"] for r in done.reported] == ["gate_failed"] * 3
    assert done.commits() == ["fix: attempt 3", "fix: attempt 2", "fix: attempt 1"]


async def test_stuck_when_the_agent_writes_its_stuck_note(worker: Worker) -> None:
    note = "cannot install `left-pad`: the sandbox has no network"
    driver = ScriptedDriver([Run(GiveUp(note))])

    done = await worker.run(spec_of(A), driver)

    assert done.result.outcome is LoopOutcome.STUCK
    assert done.result.reason == f"the agent wrote .ai/stuck.md: {note}"
    assert [r["iteration"] for r in done.reported] == [1]
    assert done.commits() == []


async def test_max_iterations_ends_as_stuck_with_what_is_done_and_left(worker: Worker) -> None:
    driver = ScriptedDriver([create(A, "a.txt", "a\n"), create(B, "b.txt", "b\n")])

    done = await worker.run(spec_of(A, B, C), driver, gate=gate("true"), max_iterations=2)

    assert done.result.outcome is LoopOutcome.STUCK
    assert done.result.reason == (
        f"reached MAX_ITERATIONS=2; 2/3 tasks done; left: {C}; quality gate passed"
    )
    assert driver.iterations == [1, 2]
    assert [r["iteration"] for r in done.reported] == [1, 2]
    assert done.workspace.changed_files() == ["a.txt", "b.txt"]


async def test_a_usage_limit_waits_for_the_reset_and_runs_the_same_iteration_again(
    worker: Worker,
) -> None:
    resets_at = int(time.time()) + 1
    driver = ScriptedDriver([
        create(A, "a.txt", "a\n"),
        Run(Write("b.txt", "b\n"), UsageLimit(resets_at)),  # one turn of work, then refused
        create(B, "b.txt", "b\n"),
    ])  # fmt: skip

    done = await worker.run(spec_of(A, B), driver)

    assert done.result.outcome is LoopOutcome.DONE
    assert driver.iterations == [1, 2, 2]
    assert driver.prompts[2] == driver.prompts[1]
    assert driver.started[2] >= resets_at, "not run again before the announced reset"
    limits = [event["data"] for event in events_of(done.detail, "limit")]
    assert [(d["status"], d["rateLimitType"]) for d in limits] == [("rejected", "five_hour")]
    assert datetime.fromisoformat(limits[0]["resetsAt"]) == datetime.fromtimestamp(resets_at, UTC)
    assert [(r["iteration"], r["outcome"]) for r in done.reported] == [
        (1, "progress"),
        (2, "progress"),
    ]
    # The refused run's turn is not lost: it counts with the run that counted.
    assert done.reported[1]["inputTokens"] == 5 * TURN_INPUT_TOKENS
    assert done.commits() == [f"feat: {B}", f"feat: {A}"]


async def test_a_transient_api_error_backs_off_and_runs_the_iteration_again(
    worker: Worker,
) -> None:
    driver = ScriptedDriver(
        [Run(TransientError()), Run(TransientError()), create(A, "a.txt", "a\n")]
    )

    done = await worker.run(spec_of(A), driver)

    assert done.result.outcome is LoopOutcome.DONE
    assert driver.iterations == [1, 1, 1]
    assert [(r["iteration"], r["outcome"]) for r in done.reported] == [(1, "progress")]
    assert events_of(done.detail, "limit") == [], "an overloaded API is not a usage limit"
    assert done.commits() == [f"feat: {A}"]


async def test_stopping_the_worker_mid_run_cancels_and_reports_nothing_more(
    worker: Worker,
) -> None:
    driver = ScriptedDriver([create(A, "a.txt", "a\n"), Run(Write("b.txt", "b\n"), UntilStopped())])
    stop = asyncio.Event()

    running = asyncio.create_task(worker.run(spec_of(A, B), driver, stop=stop))
    await asyncio.wait_for(driver.waiting.wait(), 30)
    stop.set()
    done = await running

    assert done.result.outcome is LoopOutcome.CANCELLED
    assert done.result.reason == "the worker was stopped"
    assert [r["iteration"] for r in done.reported] == [1]
    assert done.detail["status"] == "running", "no final report either"
    assert done.commits() == [f"feat: {A}"]
    assert (done.workspace.path / "b.txt").read_text() == "b\n", "the run's work is left alone"
    assert done.workspace.has_uncommitted_changes()


async def test_a_spec_without_boxes_fails_at_once(worker: Worker) -> None:
    driver = ScriptedDriver([])

    # Submission refuses such a spec; a worker can still find one in its worktree.
    done = await worker.run(spec_of(A), driver, worktree_spec="# Tidy up\n\nMake the code nicer.\n")

    assert done.result.outcome is LoopOutcome.FAILED
    assert done.result.reason == "SPEC.md has no task checkboxes (- [ ] ...)"
    assert driver.requests == []
    assert done.reported == []


async def test_a_run_the_limit_cut_after_its_task_was_done_is_that_iteration(
    worker: Worker,
) -> None:
    """Refused at its closing request: its work counts once, and the next run waits."""
    resets_at = int(time.time()) + 1
    driver = ScriptedDriver([
        Run(Write("a.txt", "a\n"), Commit(f"feat: {A}"), Check(A), UsageLimit(resets_at)),
        create(B, "b.txt", "b\n"),
    ])  # fmt: skip

    done = await worker.run(spec_of(A, B), driver)

    assert done.result.outcome is LoopOutcome.DONE
    assert driver.iterations == [1, 2]
    assert [(r["iteration"], r["outcome"]) for r in done.reported] == [
        (1, "progress"),
        (2, "progress"),
    ]
    assert driver.started[1] >= resets_at, "the next run waited for the reset"
    assert len(events_of(done.detail, "limit")) == 1


async def test_a_factory_paused_by_another_workers_limit_starts_no_run_before_the_reset(
    worker: Worker, api: ServerThread
) -> None:
    resets_at = datetime.fromtimestamp(int(time.time()) + 2, UTC)
    limit = LimitReport(status=LimitStatus.REJECTED, resets_at=resets_at,
                        rate_limit_type="five_hour", utilization=1.0)  # fmt: skip
    api.call(api.services.rate_limiter.record_limit(limit))  # as another worker reported it
    driver = ScriptedDriver([create(A, "a.txt", "a\n")])

    done = await worker.run(spec_of(A), driver)

    assert done.result.outcome is LoopOutcome.DONE
    # Not before the reset. (The margin is added only while the pause is still in force
    # when the worker asks, which a slow workspace preparation may miss.)
    assert driver.started[0] >= resets_at.timestamp()
    assert [r["iteration"] for r in done.reported] == [1]



async def test_near_a_limit_a_worker_starts_no_run_until_it_has_the_turn(
    worker: Worker, api: ServerThread
) -> None:
    """Claude warned that the window is close to its limit and an older worker has the
    turn: this one starts nothing until that worker ends, then goes on (long before the
    window resets)."""
    older = spawn_record(api, submit(api, worker.origin.path, spec_of(C)))
    resets_at = datetime.fromtimestamp(int(time.time()) + 120, UTC)
    warning = LimitReport(status=LimitStatus.ALLOWED_WARNING, resets_at=resets_at,
                          rate_limit_type="five_hour", utilization=0.9)  # fmt: skip
    api.call(api.services.rate_limiter.record_limit(warning))  # as a worker reported it
    ended: list[float] = []

    async def older_worker_ends() -> None:
        await asyncio.sleep(1.5)
        ended.append(time.time())
        await asyncio.to_thread(api.call, api.services.workers.kill(older.worker_id, reason="done"))

    ending = asyncio.create_task(older_worker_ends())
    driver = ScriptedDriver([create(A, "a.txt", "a\n")])

    done = await worker.run(spec_of(A), driver)
    await ending

    assert done.result.outcome is LoopOutcome.DONE
    assert driver.started[0] >= ended[0], "a run started in another worker's turn"
    assert driver.started[0] < resets_at.timestamp()
    assert [r["iteration"] for r in done.reported] == [1]


async def test_the_item_spending_cap_stops_it_as_stuck_and_caps_each_run(worker: Worker) -> None:
    driver = ScriptedDriver([create(A, "a.txt", "a\n"), create(B, "b.txt", "b\n")])

    done = await worker.run(
        spec_of(A, B), driver, max_item_cost_usd=0.02, max_iteration_cost_usd=0.5
    )

    assert done.result.outcome is LoopOutcome.STUCK
    assert done.result.reason == f"reached MAX_ITEM_COST_USD=$0.02 (spent $0.04); 1/2 tasks done; left: {B}"
    assert driver.iterations == [1]
    assert driver.requests[0].max_budget_usd == pytest.approx(0.02)  # what is left of the item's
    assert done.commits() == [f"feat: {A}"]


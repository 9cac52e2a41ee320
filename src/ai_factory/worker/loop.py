"""The Ralph loop: fresh agent runs until SPEC.md is done and the gate passes, or a cap.

Owns: the iteration sequence and the end of the run (`LoopOutcome`); an
unexpected error ends it as failed (the caller saves the work), not as a crash.
Per iteration:

1. build the prompt (SPEC.md now, learnings, notes, the last gate failure);
2. run the agent (`AgentDriver`); `run_outcome.decide` says whether the run counts:
   a usage limit reports ``limited`` the moment Claude reports it, sleeps
   (heartbeating, phase ``limited``) until the reset and runs the SAME iteration
   again; a transient API error backs off and runs it again; an auth error ends
   the loop as failed. Runs that did not count fold their tokens into the
   iteration that does. A run the limit cut after it had done its work (a new
   commit or a newly checked box) is that iteration, and the next one waits;
3. the whole factory pauses for a usage limit (`usage_pause.UsagePause`): before
   each run, and after each tool call inside one (the Claude driver's hook), the
   worker asks the orchestrator whether a limit (any worker's) is in force, and
   waits for its reset plus the policy's margin instead of letting Claude send a
   request;
4. reconcile SPEC.md with the branch (`branch_progress`: every checked task has a
   commit carrying its ``Factory-Task`` trailer, every such commit's box is checked),
   run the quality gate, read SPEC.md's boxes and the branch head, report the
   iteration (POST .../iteration, which the daily budget counts) and heartbeat;
5. done when every blocking box is checked AND the gate passes (what the agent
   says is not enough); stuck by `progress.ProgressTracker`'s rules.

A branch that already holds every task (an earlier attempt finished them and
died before delivering) is done without running the agent, once the gate passes.

Caps: MAX_ITERATIONS ends the loop as stuck with what is done and what is left, and
so does MAX_ITEM_COST_USD (the agents' reported cost for this attempt); each run is
capped at MAX_ITERATION_COST_USD (Claude Code's own budget) and at what is left of
the item's.
An iteration cut by ITERATION_IDLE_TIMEOUT_SECONDS or ITERATION_TIMEOUT_SECONDS counts (outcome
``error``) and the loop goes on, with a note in the next prompt; repeated
timeouts without progress end as stuck. Committing leftovers as WIP and pushing
is the caller's job (`ending.Ending`, run by `main`), for every outcome but a lost
lease.

A driver that runs its own loop (the command driver) is run once; its inner
iterations are reported as they finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from ai_factory.core.models import (
    IterationOutcome,
    WorkerPhase,
)
from ai_factory.core.spec import SPEC_FILE, SpecTasks, parse_tasks
from ai_factory.core.waiting import wait_event
from ai_factory.worker import agent_files
from ai_factory.worker.agent import (
    AgentDriver,
    AgentRequest,
    AgentUnavailableError,
    IterationResult,
    StopReason,
)
from ai_factory.worker.branch_progress import (
    check_boxes,
    checked_numbers,
    next_open_task,
    task_text,
)
from ai_factory.worker.client import Heartbeat, LeaseLostError, OrchestratorClient
from ai_factory.worker.gate import GateResult, QualityGate
from ai_factory.worker.hooks import FileLocks
from ai_factory.worker.progress import (
    ProgressTracker,
    iteration_outcome,
    iteration_report,
    read_tasks,
)
from ai_factory.worker.prompt import PromptContext, iteration_prompt, system_prompt
from ai_factory.worker.run_outcome import (
    LimitAction,
    LimitPolicy,
    decide,
)
from ai_factory.worker.usage_pause import UsagePause

log = logging.getLogger(__name__)


class LoopOutcome(StrEnum):
    DONE = "done"
    STUCK = "stuck"
    FAILED = "failed"
    CANCELLED = "cancelled"  # lease lost or the worker is stopping: report nothing, push nothing


class LoopWorkspace(Protocol):
    """What the loop needs from the workspace (`ai_factory.worker.workspace.Workspace`)."""

    path: Path

    def head_sha(self) -> str: ...

    def has_uncommitted_changes(self) -> bool: ...

    def recorded_tasks(self) -> set[int]: ...

    def record_tasks(self, numbers: list[int], *, summary: str, amend: bool) -> None: ...

    def recent_commits(self, limit: int = 20) -> list[str]: ...

    def write_file(self, relpath: str, text: str, *, exclude: bool = True) -> None: ...


@dataclass(frozen=True)
class LoopConfig:
    max_iterations: int = 20
    stuck_after: int = 3
    policy: LimitPolicy = field(default_factory=LimitPolicy)
    max_iteration_cost_usd: float | None = None  # one run (Claude Code stops at it)
    max_item_cost_usd: float | None = None  # this attempt at the item: then stuck


@dataclass
class LoopResult:
    outcome: LoopOutcome
    reason: str
    iterations: int
    tokens: int
    cost_usd: float
    tasks: SpecTasks
    gate: GateResult | None = None


class _End(Exception):
    def __init__(self, outcome: LoopOutcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class RalphLoop:
    def __init__(
        self,
        *,
        workspace: LoopWorkspace,
        driver: AgentDriver,
        client: OrchestratorClient,
        heartbeat: Heartbeat,
        gate: QualityGate | None = None,
        locks: FileLocks | None = None,
        learnings: list[str] | None = None,
        config: LoopConfig | None = None,
        stop: asyncio.Event | None = None,
        notes: list[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.workspace = workspace
        self.driver = driver
        self.client = client
        self.heartbeat = heartbeat
        self.gate = gate
        self.locks = locks
        self.learnings = learnings or []
        self.config = config or LoopConfig()
        self.stop = stop or asyncio.Event()
        self.clock = clock
        self.first_notes = notes or []  # for the first iteration (e.g. set-aside leftovers)
        self.iterations = 0  # counted (reported) iterations
        self.tokens = 0
        self.cost_usd = 0.0
        self._last_gate: GateResult | None = None
        self._gate_state: tuple[str, bool] | None = None  # (head, dirty) the last gate ran on
        self.usage = UsagePause(client=client, heartbeat=heartbeat, sleep=self._sleep,
                                reset_margin_s=self.config.policy.reset_margin_s, clock=clock)  # fmt: skip

    @property
    def root(self) -> Path:
        return self.workspace.path

    async def run(self) -> LoopResult:
        tasks = read_tasks(self.root)
        try:
            if tasks.total == 0:
                raise _End(LoopOutcome.FAILED, f"{SPEC_FILE} has no task checkboxes (- [ ] ...)")
            if self.gate is None:
                log.info("gate.none (no .factory.toml [gates] test, no FACTORY_TEST_COMMAND)")
            if tasks.all_done:
                await self._finish_done_branch(tasks)
            tracker = ProgressTracker.start(
                root=self.root, stuck_after=self.config.stuck_after, head=self.workspace.head_sha()
            )
            await self._iterate(tracker)
        except _End as end:
            return self._result(end.outcome, end.reason)
        except LeaseLostError:
            return self._result(LoopOutcome.CANCELLED, "the lease was lost")
        except Exception as exc:  # a bug or an OS error: end as failed, so the work is saved
            if self.stop.is_set():
                return self._result(LoopOutcome.CANCELLED, "the worker was stopped")
            log.exception("loop.crashed iterations=%s", self.iterations)
            return self._result(LoopOutcome.FAILED, f"worker error: {type(exc).__name__}: {exc}")
        raise AssertionError("the loop ends only through _End")  # pragma: no cover

    # --- the sequence ---

    async def _finish_done_branch(self, tasks: SpecTasks) -> None:
        """Every task is recorded on the branch already: done once the gate passes (else the
        loop goes on, to make it pass)."""
        gate = await self._run_gate(self.workspace.head_sha())
        self._check_stop()
        if gate is None or gate.passed:
            raise _End(
                LoopOutcome.DONE,
                f"all {tasks.total} tasks were already done on the branch" + self._gate_note(),
            )

    async def _iterate(self, tracker: ProgressTracker) -> None:
        notes: list[str] = list(self.first_notes)
        while True:
            if not agent_files.is_file(self.root, SPEC_FILE):  # a symlink counts as gone
                raise _End(LoopOutcome.STUCK, f"{SPEC_FILE} disappeared from the workspace")
            if self.iterations >= self.config.max_iterations:
                raise _End(
                    LoopOutcome.STUCK,
                    f"reached MAX_ITERATIONS={self.config.max_iterations};"
                    f" {read_tasks(self.root).summary()}{self._gate_note()}",
                )
            self._check_item_cost()
            number = self.iterations + 1
            before = self.workspace.head_sha()
            result = await self._run_counted(number, notes)
            number = self.iterations + 1  # a self-looping driver may have reported inner ones
            self._reconcile(before)
            head = self.workspace.head_sha()
            gate = await self._run_gate(head)
            self._check_stop()  # a cancel during the gate wins over its result
            tasks = read_tasks(self.root)
            seen = tracker.observe(
                head=head,
                tasks=tasks,
                gate_fingerprint=None if gate is None or gate.passed else gate.fingerprint,
            )
            outcome = iteration_outcome(result, gate, progress=seen.progress)
            self._report(number, result, outcome, tasks)
            log.info(
                "iteration.finished number=%s outcome=%s tasks=%s/%s new_commit=%s checked=%s",
                number, outcome.value, len(tasks.done), tasks.total, seen.new_commit,
                len(seen.newly_checked),
            )  # fmt: skip
            if tasks.all_done and (gate is None or gate.passed):
                raise _End(LoopOutcome.DONE, f"all {tasks.total} tasks done" + self._gate_note())
            if seen.stuck_reason:
                raise _End(LoopOutcome.STUCK, seen.stuck_reason)
            self._check_item_cost()
            if self.driver.runs_own_loop:
                raise self._external_end(result, tasks)
            notes = self._notes(result)

    async def _run_counted(self, number: int, notes: list[str]) -> IterationResult:
        """Run the agent until a run counts; waits and backoffs run the same iteration again."""
        carried = IterationResult()  # usage of runs that did not count
        transient = 0
        while True:
            self._check_stop()
            await self.usage.wait_while_paused()
            started = self._progress_mark()
            self.usage.new_run()
            self.heartbeat.set_phase(WorkerPhase.RUNNING, f"iteration {number}")
            request = self._request(number, notes)
            log.info("iteration.started number=%s agent=%s", number, self.driver.name)
            linked = asyncio.create_task(self._link_stop(request.stop))
            try:
                result = await self.driver.run(request)
            except AgentUnavailableError as exc:
                raise _End(LoopOutcome.FAILED, str(exc)) from None
            finally:
                linked.cancel()
            self._add_totals(result)
            self._check_stop()
            if result.stop is StopReason.CANCELLED:
                raise _End(LoopOutcome.CANCELLED, "the agent run was stopped")
            self.usage.report_warning(result)
            decision = decide(
                result, now=self.clock(), transient_failures=transient, policy=self.config.policy
            )
            match decision.action:
                case LimitAction.PROCEED:
                    result.add_usage(carried)
                    return result
                case LimitAction.FAIL:
                    log.error("iteration.fatal number=%s reason=%s", number, decision.reason)
                    raise _End(LoopOutcome.FAILED, decision.reason)
                case LimitAction.WAIT_FOR_RESET if self._progress_mark() != started:
                    # It did its work before the limit cut it: it is this iteration. The
                    # next run waits for the reset (`UsagePause.wait_while_paused`).
                    self.usage.note(decision)
                    result.stop = StopReason.LIMITED
                    result.add_usage(carried)
                    return result
                case LimitAction.WAIT_FOR_RESET:
                    carried.add_usage(result)
                    transient = 0
                    await self.usage.wait_for_reset(decision)
                case LimitAction.BACKOFF:
                    carried.add_usage(result)
                    transient += 1
                    log.warning("iteration.backoff number=%s %s", number, decision.reason)
                    self.heartbeat.set_phase(WorkerPhase.RUNNING, decision.reason[:500])
                    await self._sleep(decision.delay_s)

    def _reconcile(self, before: str) -> None:
        """Make SPEC.md and the branch agree after an iteration (see `branch_progress`)."""
        spec = agent_files.read_text(self.root, SPEC_FILE)  # the agent's file: no symlink followed
        if spec is None:
            return  # the loop says so next
        checked, recorded = checked_numbers(spec), self.workspace.recorded_tasks()
        if unrecorded := sorted(checked - recorded):
            moved = self.workspace.head_sha() != before  # this iteration's own, unpushed commit
            titles = "; ".join(task_text(spec, n) for n in unrecorded)
            self.workspace.record_tasks(
                unrecorded, summary=f"chore: checked off in SPEC.md: {titles}"[:200], amend=moved
            )
        if unchecked := recorded - checked:
            self.workspace.write_file(SPEC_FILE, check_boxes(spec, unchecked))
            log.info("progress.boxes_checked tasks=%s (their commits exist)", sorted(unchecked))

    def _request(self, number: int, notes: list[str]) -> AgentRequest:
        spec = agent_files.read_text(self.root, SPEC_FILE) or ""
        prompt = iteration_prompt(
            PromptContext(
                iteration=number,
                max_iterations=self.config.max_iterations,
                spec=spec,
                tasks=parse_tasks(spec),
                next_task=next_open_task(spec),
                commits=self.workspace.recent_commits(),
                learnings=self.learnings,
                notes=notes,
                gate_failure=self._last_gate
                if self._last_gate and not self._last_gate.passed
                else None,
            )
        )
        return AgentRequest(
            iteration=number,
            prompt=prompt,
            system_prompt=system_prompt(),
            cwd=self.root,
            max_budget_usd=self._run_budget(),
            on_inner_start=self._inner_started,
            on_inner_iteration=self._inner_finished,
            factory_pause=self.usage.factory_pause,
            on_rejected=self.usage.rejected_now,
            on_warning=self.usage.warned_now,
        )

    # --- inner iterations of a self-looping driver ---

    def _inner_started(self, _number: int) -> None:
        self.heartbeat.progress.iteration = self.iterations + 1
        self.heartbeat.set_phase(WorkerPhase.RUNNING, f"iteration {self.iterations + 1}")
        self.heartbeat.beat_now()

    async def _inner_finished(self, result: IterationResult) -> None:
        tasks = read_tasks(self.root)
        self._add_totals(result)
        self._report(self.iterations + 1, result, IterationOutcome.PROGRESS, tasks)

    # --- gate ---

    async def _run_gate(self, head: str) -> GateResult | None:
        if self.gate is None:
            return None
        state = (head, self.workspace.has_uncommitted_changes())
        if state == self._gate_state and not state[1]:
            return self._last_gate  # nothing changed since it last ran
        self.heartbeat.set_phase(WorkerPhase.GATE, f"quality gate: {self.gate.command}")
        self._last_gate = await self.gate.run(self.root)
        self._gate_state = state
        return self._last_gate

    def _gate_note(self) -> str:
        gate = self._last_gate
        if gate is None:
            return ""
        return (
            "; quality gate passed" if gate.passed else f"; quality gate failing: {gate.describe()}"
        )

    # --- progress and spending caps ---

    def _progress_mark(self) -> tuple[str, frozenset[str]]:
        """The branch head and the checked boxes: a run that changed either did work."""
        return self.workspace.head_sha(), frozenset(read_tasks(self.root).done)

    def _run_budget(self) -> float | None:
        caps = [self.config.max_iteration_cost_usd]
        if self.config.max_item_cost_usd is not None:
            caps.append(max(0.0, self.config.max_item_cost_usd - self.cost_usd))
        known = [c for c in caps if c is not None]
        return min(known) if known else None

    def _check_item_cost(self) -> None:
        cap = self.config.max_item_cost_usd
        if cap is not None and self.cost_usd >= cap:
            raise _End(
                LoopOutcome.STUCK,
                f"reached MAX_ITEM_COST_USD=${cap:.2f} (spent ${self.cost_usd:.2f});"
                f" {read_tasks(self.root).summary()}{self._gate_note()}",
            )

    # --- helpers ---

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the worker must stop."""
        if seconds > 0:
            await wait_event(self.stop, seconds)
        self._check_stop()

    async def _link_stop(self, run_stop: asyncio.Event) -> None:
        await self.stop.wait()
        run_stop.set()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _End(LoopOutcome.CANCELLED, "the worker was stopped")

    def _add_totals(self, result: IterationResult) -> None:
        self.tokens += result.tokens
        self.cost_usd += result.cost_usd
        self.heartbeat.progress.tokens = self.tokens
        self.heartbeat.progress.cost_usd = self.cost_usd

    def _report(
        self, number: int, result: IterationResult, outcome: IterationOutcome, tasks: SpecTasks
    ) -> None:
        self.iterations = number
        self.client.report_iteration(iteration_report(number, result, outcome, tasks))
        self.heartbeat.progress.iteration = number
        self.heartbeat.beat_now()

    def _notes(self, result: IterationResult) -> list[str]:
        notes = []
        if result.stop is StopReason.IDLE_TIMEOUT:
            notes.append(
                "it was stopped because it produced no output for too long; keep steps short"
            )
        elif result.stop is StopReason.WALL_TIMEOUT:
            notes.append("it was stopped for running too long; do one small task per iteration")
        elif result.subtype == "error_max_budget_usd":
            notes.append("it was stopped at its spending cap; keep each step small and commit early")
        if self.locks is not None:
            for path in self.locks.take_conflicts():
                notes.append(f"{path} was locked by another worker; do other tasks first or wait")
        return notes

    def _external_end(self, result: IterationResult, tasks: SpecTasks) -> _End:
        if result.exit_code:
            tail = "\n".join(result.output_tail.splitlines()[-15:])
            return _End(
                LoopOutcome.FAILED,
                f"the agent command exited with code {result.exit_code}; {tasks.summary()}"
                f"{self._gate_note()}\n{tail}",
            )
        return _End(
            LoopOutcome.STUCK,
            f"the agent command ended before the work was done; {tasks.summary()}{self._gate_note()}",
        )

    def _result(self, outcome: LoopOutcome, reason: str) -> LoopResult:
        log.info("loop.ended outcome=%s iterations=%s reason=%s", outcome.value, self.iterations,
                 reason.splitlines()[0] if reason else "")  # fmt: skip
        return LoopResult(
            outcome=outcome,
            reason=reason,
            iterations=self.iterations,
            tokens=self.tokens,
            cost_usd=self.cost_usd,
            tasks=read_tasks(self.root),
            gate=self._last_gate,
        )

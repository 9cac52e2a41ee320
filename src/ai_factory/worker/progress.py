"""What the worker itself sees of the agent's progress, independent of what the agent claims.

Owns: reading the workspace's SPEC.md (`read_tasks`) and the stuck rules
(`ProgressTracker`): after each iteration the worker compares the branch head
and the checked tasks with the iteration before, and reads `.ai/stuck.md`.

Stuck when:
- `.ai/stuck.md` appears (or changes) with something in it: the agent gave up
  and said why;
- STUCK_AFTER iterations in a row bring no new commit and no newly checked task;
- the quality gate fails the same way STUCK_AFTER times in a row.

What counts as a task, done or blocking is `ai_factory.core.spec`'s reading of
SPEC.md, the same one intake uses to decide an issue has work in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ai_factory.core.models import IterationOutcome, IterationReport
from ai_factory.core.spec import SPEC_FILE, SpecTasks, parse_tasks
from ai_factory.worker import agent_files
from ai_factory.worker.agent.result import IterationResult, StopReason
from ai_factory.worker.gate import GateResult

STUCK_FILE = ".ai/stuck.md"


def read_tasks(root: Path) -> SpecTasks:
    """SPEC.md's tasks; none when it is not a regular file (a symlink is not followed)."""
    spec = agent_files.read_text(root, SPEC_FILE)
    return parse_tasks(spec) if spec is not None else SpecTasks()


def read_stuck_note(root: Path) -> str:
    return (agent_files.read_text(root, STUCK_FILE) or "").strip()


@dataclass(frozen=True)
class Observation:
    """What changed in one iteration."""

    new_commit: bool
    newly_checked: tuple[str, ...]
    stuck_reason: str | None

    @property
    def progress(self) -> bool:
        return self.new_commit or bool(self.newly_checked)


@dataclass
class ProgressTracker:
    root: Path
    stuck_after: int
    head: str
    done: set[str] = field(default_factory=set)
    stuck_note: str = ""
    idle_streak: int = 0
    gate_fingerprint: str | None = None
    gate_streak: int = 0

    @classmethod
    def start(cls, *, root: Path, stuck_after: int, head: str) -> ProgressTracker:
        return cls(
            root=root,
            stuck_after=stuck_after,
            head=head,
            done=set(read_tasks(root).done),
            stuck_note=read_stuck_note(root),
        )

    def observe(self, *, head: str, tasks: SpecTasks, gate_fingerprint: str | None) -> Observation:
        """Compare with the previous iteration; `gate_fingerprint` is None when the gate passed."""
        new_commit = head != self.head
        newly = tuple(t for t in tasks.done if t not in self.done)
        self.head = head
        self.done |= set(tasks.done)
        self.idle_streak = 0 if (new_commit or newly) else self.idle_streak + 1
        if gate_fingerprint is None:
            self.gate_fingerprint, self.gate_streak = None, 0
        elif gate_fingerprint == self.gate_fingerprint:
            self.gate_streak += 1
        else:
            self.gate_fingerprint, self.gate_streak = gate_fingerprint, 1
        return Observation(new_commit, newly, self._stuck_reason(tasks))

    def _stuck_reason(self, tasks: SpecTasks) -> str | None:
        note = read_stuck_note(self.root)
        if note and note != self.stuck_note:
            self.stuck_note = note
            return f"the agent wrote {STUCK_FILE}: {note[:4000]}"
        if self.idle_streak >= self.stuck_after:
            return (
                f"no new commit and no newly checked task in {self.idle_streak} iterations "
                f"(STUCK_AFTER={self.stuck_after}); {tasks.summary()}"
            )
        if self.gate_streak >= self.stuck_after:
            return (
                f"the quality gate failed the same way {self.gate_streak} times in a row "
                f"(STUCK_AFTER={self.stuck_after}); {tasks.summary()}"
            )
        return None


def iteration_outcome(
    result: IterationResult, gate: GateResult | None, *, progress: bool
) -> IterationOutcome:
    if gate is not None and not gate.passed:
        return IterationOutcome.GATE_FAILED
    if result.stop is StopReason.LIMITED:  # counted only when it did its work before the limit
        return IterationOutcome.PROGRESS if progress else IterationOutcome.NO_PROGRESS
    if result.stop in (StopReason.IDLE_TIMEOUT, StopReason.WALL_TIMEOUT) or result.failed:
        return IterationOutcome.ERROR
    return IterationOutcome.PROGRESS if progress else IterationOutcome.NO_PROGRESS


def iteration_report(
    number: int, result: IterationResult, outcome: IterationOutcome, tasks: SpecTasks
) -> IterationReport:
    """POST .../iteration for one counted iteration (the daily budget counts these)."""
    message = f"iteration {number}: {outcome.value}, {len(tasks.done)}/{tasks.total} tasks done"
    if result.stop is not StopReason.FINISHED:
        message += f" (stopped: {result.stop.value})"
    if result.denied_edits:
        message += f"; lock conflicts: {', '.join(result.denied_edits)}"
    return IterationReport(
        iteration=number,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cache_read_tokens=result.cache_read_tokens,
        cache_creation_tokens=result.cache_creation_tokens,
        cost_usd=round(result.cost_usd, 6),
        duration_ms=result.duration_ms,
        num_turns=result.num_turns,
        session_id=result.session_id,
        outcome=outcome,
        files_edited=result.files_edited,
        tasks_done=len(tasks.done),
        tasks_total=tasks.total,
        done_tasks=[task[:2000] for task in tasks.done[:1000]],
        message=message,
    )

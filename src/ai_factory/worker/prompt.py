"""What Claude is told each iteration: the system prompt and the user prompt.

Owns: `system_prompt()` (the factory's working protocol, `protocol.md`, which
replaces Claude Code's own system prompt: the worker needs no more, and every
request carries it; the repository's CLAUDE.md still reaches Claude as context)
and `iteration_prompt()` (the iteration's user message).

Static before dynamic, for the prompt cache: the system prompt never changes
(tools and system prompt are the cached prefix of every request of every
session); in the user message, what changes least comes first: the instruction,
the learnings (fixed for an item), SPEC.md, the branch's commits, then this
iteration's number and next task, notes about the previous iteration, and the
last quality gate failure with its output.

The gate failure comes last, under the heading "Quality gate failed", so it is
the freshest thing Claude reads; that heading appears nowhere else in the prompt.
The spec is issue text: it only ever becomes prompt text, never a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ai_factory.core.spec import SpecTask, SpecTasks
from ai_factory.worker.branch_progress import trailer_line
from ai_factory.worker.gate import GateResult

SPEC_PROMPT_CHARS = 20_000
# The orchestrator sizes a worker's learnings to LEARNINGS_BUDGET_TOKENS (1,500 by default,
# about 6,000 characters); this only bounds a budget set far higher.
LEARNINGS_PROMPT_CHARS = 40_000


@cache
def system_prompt() -> str:
    """The worker's whole system prompt: the protocol, the same for every request."""
    return resources.files("ai_factory.worker").joinpath("protocol.md").read_text(encoding="utf-8")


@dataclass
class PromptContext:
    iteration: int
    max_iterations: int
    spec: str
    tasks: SpecTasks
    next_task: tuple[int, SpecTask] | None = None  # the first open task and its number
    commits: list[str] = field(default_factory=list)  # the branch's newest commits, newest first
    learnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the previous iteration
    gate_failure: GateResult | None = None


def iteration_prompt(ctx: PromptContext) -> str:
    parts = [_instruction(ctx)]
    if ctx.learnings:
        lines, size = [], 0
        for learning in ctx.learnings:
            size += len(learning)
            if size > LEARNINGS_PROMPT_CHARS:
                break
            lines.append(f"- {learning}")
        parts.append("Learnings from earlier work (also in .ai/learnings.md):\n" + "\n".join(lines))
    spec = ctx.spec
    if len(spec) > SPEC_PROMPT_CHARS:
        spec = spec[:SPEC_PROMPT_CHARS] + "\n[... truncated here; read SPEC.md for the rest]"
    parts.append(f"SPEC.md as of now:\n\n<spec>\n{spec.rstrip()}\n</spec>")
    if ctx.commits:
        parts.append(
            "Commits on this branch so far (newest first; a task whose work is already "
            "committed only needs checking off):\n" + "\n".join(f"- {c}" for c in ctx.commits)
        )
    parts.append(
        f"This is iteration {ctx.iteration} of at most {ctx.max_iterations} of the factory "
        f"loop working through SPEC.md ({len(ctx.tasks.done)} of {ctx.tasks.total} tasks "
        "done so far)."
    )
    if ctx.next_task is not None:
        number, task = ctx.next_task
        parts.append(
            f"The first unchecked task is task {number}: {task.text}\n"
            f"End the message of the commit that finishes it with the line "
            f"`{trailer_line(number)}`."
        )
    if ctx.notes:
        parts.append("About the previous iteration:\n" + "\n".join(f"- {n}" for n in ctx.notes))
    if ctx.gate_failure is not None:
        gate = ctx.gate_failure
        parts.append(
            "## Quality gate failed\n\n"
            f"After the previous iteration the factory ran the quality gate and it failed: "
            f"{gate.describe()}. The end of its output:\n\n```\n{gate.output_tail.strip()}\n```"
        )
    return "\n\n".join(parts) + "\n"


def _instruction(ctx: PromptContext) -> str:
    if ctx.gate_failure is not None and ctx.tasks.all_done:
        return (
            "Every task is checked off, but the quality gate does not pass yet: make it pass, "
            "commit the fix, then stop."
        )
    if ctx.gate_failure is not None:
        return (
            "First make the quality gate pass again (see the end of this message) and commit the "
            "fix; then stop, or, if that was quick, go on with the first unchecked task."
        )
    return (
        "Follow the factory protocol: do the first unchecked task in SPEC.md, commit it, "
        "check it off in SPEC.md, then stop."
    )

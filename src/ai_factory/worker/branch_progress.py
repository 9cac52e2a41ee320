"""Progress that travels with the branch: which SPEC.md task each commit finishes.

SPEC.md is never committed, so its checked boxes alone would die with the worktree
that holds them. A commit that finishes task N therefore carries the trailer
``Factory-Task: N`` (N counts the tasks of the item's SPEC.md from 1, in order, as
`ai_factory.core.spec` reads them). The agent is asked to add it; after every
iteration the worker makes sure of it (`Reconciler`): a task checked off without a
recorded commit gets its trailer on the iteration's own last commit, or on an
empty commit when the iteration made none, and a task whose commit carries the
trailer but whose box is still open is checked off.

Whatever attempt, host or worktree picks the item up rebuilds SPEC.md from the
item's spec and the trailers on the branch (`restore_spec`), so a task whose
commit exists is never done twice, and a box is never checked without its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ai_factory.core.spec import SpecTask, parse_task_list

log = logging.getLogger(__name__)

TRAILER = "Factory-Task"


def trailer_line(number: int) -> str:
    return f"{TRAILER}: {number}"


def parse_trailers(values: str) -> set[int]:
    """Task numbers from `git log --format=%(trailers:key=Factory-Task,valueonly)` output."""
    numbers: set[int] = set()
    for raw in values.replace(",", "\n").split():
        if raw.isdigit() and 0 < int(raw) < 1_000_000:
            numbers.add(int(raw))
    return numbers


def checked_numbers(spec: str) -> set[int]:
    """The numbers of the tasks checked in `spec`."""
    return {n for n, task in enumerate(parse_task_list(spec), start=1) if task.checked}


def check_boxes(spec: str, numbers: Iterable[int]) -> str:
    """`spec` with the tasks numbered `numbers` checked (other lines untouched)."""
    wanted = set(numbers)
    lines = spec.splitlines(keepends=True)
    for n, task in enumerate(parse_task_list(spec), start=1):
        if n in wanted and not task.checked:
            index = task.line - 1
            lines[index] = lines[index].replace("[ ]", "[x]", 1)
    return "".join(lines)


def restore_spec(spec: str, recorded: set[int]) -> str:
    """The item's spec as the branch says it stands: every recorded task checked."""
    return check_boxes(spec, recorded)


def task_text(spec: str, number: int) -> str:
    tasks = parse_task_list(spec)
    return tasks[number - 1].text if 0 < number <= len(tasks) else ""


def next_open_task(spec: str) -> tuple[int, SpecTask] | None:
    """The first unchecked blocking task and its number, or None."""
    for n, task in enumerate(parse_task_list(spec), start=1):
        if not task.checked and task.blocking:
            return n, task
    return None


@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation after an iteration did."""

    recorded: tuple[int, ...] = ()  # trailers the worker added (amended or empty commit)
    checked: tuple[int, ...] = ()  # boxes the worker checked (their commit existed)

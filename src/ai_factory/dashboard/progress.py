"""Which SPEC.md to show for an item, with its boxes checked as far as anyone knows.

The worker checks boxes in its worktree's SPEC.md; the queue keeps the spec as it
was submitted. In order of preference the dashboard shows:

1. ``worktree``: FACTORY_HOME/worktrees/<id>/SPEC.md while a local worker runs the
   item (process and bwrap spawners share FACTORY_HOME with the orchestrator);
2. ``report``: the SPEC.md (``spec``) or the done task texts (``doneTasks``) of the
   latest iteration report, for workers on other hosts that send them;
3. ``final``: a completed item has every blocking task done, by definition of done (its
   boxes are checked on whichever text of the two above, or the submitted spec);
4. ``submitted``: the spec as submitted, with the last iteration report's count
   (``tasksDone``/``tasksTotal``) beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ai_factory.core.models import WorkItem, WorkItemEvent, WorkItemStatus
from ai_factory.core.spec import SPEC_FILE, parse_task_list, parse_tasks

MAX_SPEC_BYTES = 1_000_000
_LIVE = (WorkItemStatus.ASSIGNED, WorkItemStatus.RUNNING)
# The box of a line `core.spec` already read as an open task.
_OPEN_BOX = re.compile(r"^(?P<head>\s*(?:[-*+]|\d+[.)])\s+\[) (?=\])")


class SpecSource(StrEnum):
    WORKTREE = "worktree"
    REPORT = "report"
    FINAL = "final"
    SUBMITTED = "submitted"


@dataclass(frozen=True, slots=True)
class SpecProgress:
    text: str
    source: SpecSource
    done: int
    total: int


def worktree_spec(home: Path, item: WorkItem) -> str | None:
    path = home / "worktrees" / str(item.id) / SPEC_FILE
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_SPEC_BYTES).decode("utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def check_tasks(spec: str, texts: set[str]) -> str:
    """`spec` with the open tasks whose text is in `texts` checked (code blocks untouched)."""
    wanted = {t.line for t in parse_task_list(spec) if not t.checked and t.text in texts}
    lines = spec.splitlines(keepends=True)
    for number in wanted:
        line = lines[number - 1]
        lines[number - 1] = _OPEN_BOX.sub(r"\g<head>x", line, count=1)
    return "".join(lines)


def spec_progress(item: WorkItem, events: list[WorkItemEvent], *, home: Path) -> SpecProgress:
    last_report = next((e.data for e in reversed(events) if e.kind == "iteration"), None)
    text, source = item.spec, SpecSource.SUBMITTED
    live = worktree_spec(home, item) if item.status in _LIVE else None
    if live is not None and live.strip():
        text, source = live, SpecSource.WORKTREE
    elif last_report and isinstance(last_report.get("spec"), str) and last_report["spec"].strip():
        text, source = last_report["spec"], SpecSource.REPORT
    elif last_report and isinstance(last_report.get("doneTasks"), list):
        done = {str(t).strip() for t in last_report["doneTasks"]}
        text, source = check_tasks(item.spec, done), SpecSource.REPORT
    if item.status is WorkItemStatus.COMPLETED and (still_open := parse_tasks(text).open):
        # Done means every blocking box was checked, whatever the last report carried
        # (a worker elsewhere may report counts only): check them on what we have.
        text, source = check_tasks(text, set(still_open)), SpecSource.FINAL
    tasks = parse_tasks(text)
    done_count, total = len(tasks.done), tasks.total
    if source is SpecSource.SUBMITTED and last_report:
        done_count = int(last_report.get("tasksDone") or 0)
        total = int(last_report.get("tasksTotal") or total)
    return SpecProgress(text=text, source=source, done=done_count, total=total)

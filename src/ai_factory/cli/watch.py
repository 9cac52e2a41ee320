"""`factory watch ID` (and `factory submit --wait`): one item, live, until it ends.

Polls the API (the item, its running worker, its SPEC.md's boxes, the limiter) and
shows tasks done of total, the attempt, iteration, phase, tokens, cost and any
usage-limit pause: a Rich progress bar on a terminal, a line per change otherwise
(logs, CI). When the item ends it prints the outcome and the branch or pull request.

Exit codes (for scripts): 0 completed, 1 failed, 2 stuck, 3 cancelled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import out

if TYPE_CHECKING:
    from ai_factory.cli.client import FactoryClient

POLL_S = 1.0
EXIT_CODES = {"completed": 0, "failed": 1, "stuck": 2, "cancelled": 3}
ENDED = frozenset(EXIT_CODES)


@dataclass(frozen=True)
class Snapshot:
    """What the display shows at one poll."""

    status: str
    attempt: int
    done: int
    total: int
    iteration: int
    phase: str
    tokens: int
    cost_usd: float
    paused: str  # "" or "paused until 16:50 (five_hour usage limit)"

    def detail(self) -> str:
        """Everything but the status and the tasks (the progress bar shows those)."""
        parts = []
        if self.status in ("assigned", "running"):
            parts += [f"iteration {self.iteration}", self.phase or "starting"]
        elif self.iteration:
            parts.append(f"{self.iteration} iteration{'' if self.iteration == 1 else 's'}")
        parts += [f"{self.tokens:,} tokens", f"${self.cost_usd:.2f}"]
        if self.attempt > 1:
            parts.append(f"attempt {self.attempt}")
        if self.paused:
            parts.append(self.paused)
        return ", ".join(parts)

    def line(self) -> str:
        return f"{self.status}, tasks {self.done}/{self.total}, {self.detail()}"


def snapshot(client: FactoryClient, item: dict[str, Any]) -> Snapshot:
    spec = client.get(f"/api/work/{item['id']}/spec")
    worker: dict[str, Any] = {}
    if item.get("workerId") and item["status"] in ("assigned", "running"):
        worker = client.get(f"/api/workers/{item['workerId']}")
    limits = client.get("/api/status")["rateLimits"] if item["status"] != "completed" else {}
    paused = ""
    if limits.get("pausedUntil"):
        until = datetime.fromisoformat(limits["pausedUntil"]).astimezone()
        paused = f"paused until {until:%H:%M} ({limits.get('pauseReason') or 'usage limit'})"
    return Snapshot(
        status=item["status"],
        attempt=int(item.get("attempts") or 0),
        done=int(spec["done"]),
        total=int(spec["total"]),
        iteration=max(int(item.get("iterations") or 0), int(worker.get("currentIteration") or 0)),
        phase=str(worker.get("phase") or ""),
        tokens=max(int(item.get("tokens") or 0), int(worker.get("totalTokens") or 0)),
        cost_usd=max(float(item.get("costUsd") or 0), float(worker.get("costUsd") or 0)),
        paused=paused,
    )


def follow(client: FactoryClient, item_id: str, *, poll_s: float = POLL_S) -> int:
    """Show the item until it ends; print how it ended; return its exit code."""
    item = client.get(f"/api/work/{item_id}")
    if out.is_terminal:
        item = _follow_live(client, item, poll_s)
    else:
        item = _follow_lines(client, item, poll_s)
    _print_end(item)
    return EXIT_CODES[item["status"]]


def _follow_lines(client: FactoryClient, item: dict[str, Any], poll_s: float) -> dict[str, Any]:
    out.print(f"{item['id']}: following it until it ends", markup=False)
    shown = ""
    while True:
        line = snapshot(client, item).line()
        if line != shown:
            out.print(line, markup=False)
            shown = line
        if item["status"] in ENDED:
            return item
        time.sleep(poll_s)
        item = client.get(f"/api/work/{item['id']}")


def _follow_live(client: FactoryClient, item: dict[str, Any], poll_s: float) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ai_factory.core.models import spec_title

    out.print(f"{item['id'][:8]}  {spec_title(item['spec'], 60)}", markup=False)
    columns = (TextColumn("{task.fields[status]:<9}"), BarColumn(bar_width=24),
               MofNCompleteColumn(), TextColumn("tasks"), TimeElapsedColumn(),
               TextColumn("{task.fields[detail]}"))  # fmt: skip
    with Progress(*columns, console=out.console, transient=False) as progress:
        task = progress.add_task("item", total=None, status=item["status"], detail="")
        while True:
            now = snapshot(client, item)
            progress.update(task, total=now.total or None, completed=now.done,
                            status=now.status, detail=now.detail())  # fmt: skip
            if item["status"] in ENDED:
                return item
            time.sleep(poll_s)
            item = client.get(f"/api/work/{item['id']}")


def _print_end(item: dict[str, Any]) -> None:
    status = item["status"]
    result = item.get("prUrl") or ""
    if status == "completed":
        if "#" in result and not result.startswith(("https://", "http://")):
            repo, branch = result.rsplit("#", 1)
            out.print(f"completed: branch {branch} in {repo}", markup=False)
        else:
            out.print(f"completed: {result}", markup=False)
        return
    reason = item.get("error") or item.get("statusReason") or ""
    out.print(f"{status}: {reason}".rstrip(": "), markup=False)
    if result:
        out.print(f"work so far: {result}", markup=False)


def watch(
    item_id: Annotated[str, typer.Argument(help="Work item id (or a unique prefix).")],
) -> None:
    """Follow a work item live until it ends; exit 0 if completed.

    Shows tasks done of total, iteration, phase, tokens, cost and usage-limit pauses,
    then the branch or pull request. Exit code: 0 completed, 1 failed, 2 stuck,
    3 cancelled."""
    client = api_client(settings_for_command())
    try:
        code = follow(client, item_id)
    finally:
        client.close()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(watch)

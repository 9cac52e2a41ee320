"""How the CLI shows things: Rich tables for people, JSON for scripts.

Rich is imported on first use (`LazyConsole`), not when a command module is: `factory
--help` and commands that print a line or two should not pay for it at start-up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text


class LazyConsole:
    """A `rich.console.Console` made on first use, with these keyword arguments."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

STATUS_STYLE = {
    "queued": "cyan",
    "assigned": "blue",
    "running": "bold blue",
    "stuck": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
}


def plain(value: object) -> Text:
    """User data (titles, repos, errors) for a table cell: shown as is, never as markup."""
    from rich.text import Text

    return Text(str(value))


def table(*columns: str, fixed: tuple[str, ...] = ()) -> Table:
    """A borderless table. Every header keeps its width (no header is split); columns
    named in `fixed` (ids, counts, ages) are never wrapped, so at 80 columns it is the
    free-text columns that fold."""
    from rich.table import Table

    grid = Table(box=None, pad_edge=False)
    for column in columns:
        keep = column in fixed
        grid.add_column(column, min_width=len(column), no_wrap=keep,
                        overflow="ellipsis" if keep else "fold")  # fmt: skip
    return grid


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data))


def age(stamp: str | None) -> str:
    if not stamp:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(max(seconds, 0))}s"


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, '')}]{status}[/]"


def items_table(items: list[dict[str, Any]]) -> Table:
    from ai_factory.core.models import spec_title

    grid = table("ID", "STATUS", "PRIORITY", "REPO", "TITLE", "AGE", "RESULT",
                 fixed=("ID", "STATUS", "PRIORITY", "AGE"))  # fmt: skip
    for item in items:
        grid.add_row(
            item["id"][:8],
            status_text(item["status"]),
            item["priority"],
            plain(item["repo"]),
            plain(spec_title(item["spec"], 60)),
            age(item["createdAt"]),
            plain(item.get("prUrl") or item.get("error") or ""),
        )
    return grid

"""How the CLI shows things: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ai_factory.core.models import spec_title

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
    return Text(str(value))


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
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "STATUS", "PRIORITY", "REPO", "TITLE", "AGE", "RESULT"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            item["id"][:8],
            status_text(item["status"]),
            item["priority"],
            plain(item["repo"]),
            plain(spec_title(item["spec"], 60)),
            age(item["createdAt"]),
            plain(item.get("prUrl") or item.get("error") or ""),
        )
    return table

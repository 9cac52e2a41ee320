"""`factory learnings`: list, search, add or delete what workers have learned (via the API)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import JsonOpt, age, out, plain, print_json
from ai_factory.core.errors import InvalidInputError


def learnings(
    repo: Annotated[
        str | None, typer.Option(help="Only this repository (and global learnings).")
    ] = None,
    search: Annotated[str | None, typer.Option(help="Best matches for this text first.")] = None,
    add: Annotated[
        str | None, typer.Option("--add", help="Save this learning (for --repo, else global).")
    ] = None,
    delete: Annotated[
        str | None, typer.Option("--delete", help="Delete the learning with this id.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-200).")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Learnings shared by workers: list or search them, add one, or delete one."""
    if add is not None and delete is not None:
        raise InvalidInputError("give at most one of --add and --delete")
    if delete is not None and (repo or search):
        raise InvalidInputError("--delete takes an id only, not --repo or --search")
    if add is not None and search:
        raise InvalidInputError("--add saves a learning; search separately with --search")
    client = api_client(settings_for_command())
    if delete is not None:
        client.request("DELETE", f"/api/learnings/{delete}")
        out.print(f"deleted {delete}", markup=False)
        return
    if add is not None:
        saved = client.post("/api/learnings", {"repo": repo, "content": add})
        if json_out:
            print_json(saved)
        else:
            times = saved["saveCount"]
            again = f" (already known, saved {times} times)" if times > 1 else ""
            out.print(f"{saved['id']}{again}", markup=False)
        return
    found = client.get("/api/learnings", repo=repo, search=search, limit=limit)
    if json_out:
        print_json(found)
    elif not found:
        out.print("No learnings yet. Workers add them when they finish; add one with --add.")
    else:
        out.print(learnings_table(found))


def learnings_table(found: list[dict]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "REPO", "USED", "AGE", "LEARNING"):
        table.add_column(column, overflow="fold")
    for learning in found:
        repo = "(global)" if learning["repo"] == "*" else learning["repo"]
        table.add_row(
            learning["id"], plain(repo), str(learning["useCount"]), age(learning["createdAt"]),
            plain(learning["content"]),
        )
    return table


def register(app: typer.Typer) -> None:
    app.command()(learnings)

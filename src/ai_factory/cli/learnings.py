"""`factory learnings`: list, search, add, edit, mark obsolete or delete what workers have
learned (via the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import JsonOpt, age, out, plain, print_json, table
from ai_factory.core.errors import InvalidInputError

if TYPE_CHECKING:
    from rich.table import Table


def learnings(
    repo: Annotated[
        str | None, typer.Option(help="Only this repository (and global learnings).")
    ] = None,
    search: Annotated[str | None, typer.Option(help="Best matches for this text first.")] = None,
    add: Annotated[
        str | None, typer.Option("--add", help="Save this learning (for --repo, else global).")
    ] = None,
    edit: Annotated[
        str | None, typer.Option("--edit", help="Give the learning with this id the --text.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="The new text, with --edit.")] = None,
    obsolete: Annotated[
        str | None,
        typer.Option("--obsolete", help="Mark the learning with this id obsolete: kept, never given."),
    ] = None,
    restore: Annotated[
        str | None, typer.Option("--restore", help="Make an obsolete learning current again.")
    ] = None,
    delete: Annotated[
        str | None, typer.Option("--delete", help="Delete the learning with this id.")
    ] = None,
    include_obsolete: Annotated[
        bool, typer.Option("--all", help="List obsolete learnings too.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many (1-200).")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List, search, add, edit or retire shared learnings.

    Learnings are what workers found out about a repository (or everywhere); each one
    can be added, edited, marked obsolete (kept, never given to a worker) or deleted."""
    actions = [a for a in (add, edit, obsolete, restore, delete) if a is not None]
    if len(actions) > 1:
        raise InvalidInputError("give at most one of --add, --edit, --obsolete, --restore and --delete")
    if actions and add is None and (repo or search):
        raise InvalidInputError("--edit, --obsolete, --restore and --delete take an id only, not --repo or --search")
    if add is not None and search:
        raise InvalidInputError("--add saves a learning; search separately with --search")
    if (edit is None) != (text is None):
        raise InvalidInputError("--edit ID and --text TEXT go together")
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
    if edit is not None or obsolete is not None or restore is not None:
        learning_id = edit or obsolete or restore
        body = {"content": text} if edit is not None else {"obsolete": obsolete is not None}
        changed = client.request("PATCH", f"/api/learnings/{learning_id}", json=body)
        if json_out:
            print_json(changed)
        else:
            what = "edited" if edit is not None else "obsolete" if obsolete is not None else "current"
            out.print(f"{what} {changed['id']}", markup=False)
        return
    found = client.get(
        "/api/learnings", repo=repo, search=search, limit=limit,
        includeObsolete="true" if include_obsolete else None,
    )
    if json_out:
        print_json(found)
    elif not found:
        out.print("No learnings yet. Workers add them when they finish; add one with --add.")
    else:
        out.print(learnings_table(found))


def given(learning: dict) -> str:
    """How often a learning went to a worker, and how that went: "3, 2 completed"."""
    count = learning.get("givenCount", 0)
    if not count:
        return "-"
    return f"{count}, {learning.get('completedCount', 0)} completed"


def learnings_table(found: list[dict]) -> Table:
    grid = table("ID", "REPO", "USED", "GIVEN", "AGE", "LEARNING",
                 fixed=("ID", "USED", "GIVEN", "AGE"))  # fmt: skip
    for learning in found:
        repo = "(global)" if learning["repo"] == "*" else learning["repo"]
        content = plain(learning["content"])
        if learning.get("obsoleteAt"):
            content = f"(obsolete) {content}"
        grid.add_row(
            learning["id"], plain(repo), str(learning["useCount"]), given(learning),
            age(learning["createdAt"]), content,
        )
    return grid


def register(app: typer.Typer) -> None:
    app.command()(learnings)

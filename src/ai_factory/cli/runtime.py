"""Runtime commands: `factory workers`, `factory logs ID [-f]`, `factory kill WORKER_ID`."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import JsonOpt, age, out, print_json, table
from ai_factory.core.errors import NotFoundError

FOLLOW_POLL_S = 0.5


def workers(
    all_workers: Annotated[bool, typer.Option("--all", help="Include finished workers.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Workers: item, phase, iteration, tokens, heartbeat."""
    rows = api_client(settings_for_command()).get("/api/workers", all="true" if all_workers else None)
    if json_out:
        print_json(rows)
        return
    if not rows:
        out.print("No workers running.")
        return
    grid = table("ID", "STATUS", "PHASE", "ITEM", "ITER", "TOKENS", "COST", "HEARTBEAT", "SPAWNER",
                 "AGE", fixed=("ID", "STATUS", "ITEM", "ITER", "TOKENS", "COST", "AGE"))  # fmt: skip
    for w in rows:
        grid.add_row(
            w["id"][:8],
            w["status"],
            w.get("phase") or "-",
            (w.get("workItemId") or "-")[:8],
            str(w["currentIteration"]),
            str(w["totalTokens"]),
            f"${w['costUsd']:.2f}",
            age(w["lastHeartbeat"]) + " ago",
            w["spawner"],
            age(w["createdAt"]),
        )
    out.print(grid)


def logs(
    item_id: Annotated[str, typer.Argument(help="Work item id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the item ends.")] = False,
) -> None:
    """Print a work item's worker output (-f: follow it).

    The stdout and stderr of every attempt, in order."""
    from ai_factory.core.models import SETTLED_STATUSES

    client = api_client(settings_for_command())
    offset = 0
    while True:
        chunk = client.get(f"/api/work/{item_id}/logs", offset=offset)
        if chunk["reset"] and offset:
            sys.stdout.write("\n[log rotated; continuing from the start of the current file]\n")
        if chunk["text"]:
            sys.stdout.write(chunk["text"])
            sys.stdout.flush()
        offset = chunk["nextOffset"]
        if chunk["nextOffset"] < chunk["size"]:
            continue  # more is already there
        if not follow:
            return
        if client.get(f"/api/work/{item_id}")["status"] in SETTLED_STATUSES:
            tail = client.get(f"/api/work/{item_id}/logs", offset=offset)
            sys.stdout.write(tail["text"])
            return
        time.sleep(FOLLOW_POLL_S)


def kill(
    worker_id: Annotated[
        str, typer.Argument(help="Worker id (see `factory workers`), or the id of its work item.")
    ],
    reason: Annotated[str, typer.Option(help="Recorded as the item's error.")] = "Manual kill",
) -> None:
    """Stop a worker now; its work item fails with the reason."""
    client = api_client(settings_for_command())
    try:
        client.post(f"/api/workers/{worker_id}/kill", {"reason": reason})
    except NotFoundError:
        item = client.get(f"/api/work/{worker_id}")  # an item's id: kill the worker it has
        if not item.get("workerId") or item["status"] not in ("assigned", "running"):
            raise NotFoundError(
                f"work item {item['id']} has no running worker (it is {item['status']})"
            ) from None
        client.post(f"/api/workers/{item['workerId']}/kill", {"reason": reason})
        worker_id = item["workerId"]
    out.print(f"{worker_id} killed")


def register(app: typer.Typer) -> None:
    for command in (workers, logs, kill):
        app.command()(command)

"""Work commands: submit, status, queue, show, cancel, retry."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import (
    JsonOpt,
    age,
    items_table,
    out,
    plain,
    print_json,
    status_text,
    table,
)
from ai_factory.core.errors import InvalidInputError
from ai_factory.core.repos import is_local


def _read_spec(spec: str | None, spec_file: Path | None) -> str:
    if (spec is None) == (spec_file is None):
        raise InvalidInputError("give exactly one of --spec-file FILE or --spec - (stdin) / --spec TEXT")
    if spec_file is not None:
        try:
            return spec_file.read_text("utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read spec file {spec_file}: {exc.strerror}") from None
    return sys.stdin.read() if spec == "-" else str(spec)


def submit(
    repo: Annotated[str, typer.Option(help="Repository URL or local path.")],
    spec_file: Annotated[Path | None, typer.Option("--spec-file", help="SPEC.md to run.")] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="Spec text, or - to read stdin.")] = None,
    priority: Annotated[str, typer.Option(help="critical, high, medium or low.")] = "medium",
    base_branch: Annotated[str, typer.Option("--base-branch", help="Branch to start from.")] = "main",
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the item until it ends (exit 0: completed).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Queue a spec for a repository and print its id.

    With --wait, follow the item live until it ends (as `factory watch`)."""
    text = _read_spec(spec, spec_file)
    client = api_client(settings_for_command())
    item = client.post(
        "/api/work",
        {"repo": _where(repo), "spec": text, "priority": priority, "baseBranch": base_branch},
    )
    if json_out:
        print_json(item)
    else:
        out.print(item["id"])
    if wait:
        from ai_factory.cli.watch import follow

        raise typer.Exit(follow(client, item["id"]))


def _chain(item: dict) -> str:
    """issue → item → pull request → follow-ups, one line."""
    parent = item.get("parent") or {}
    root_id = parent.get("id") or item["id"]
    root_status = parent.get("status") or item["status"]
    pull = parent.get("prUrl") if parent else item.get("prUrl")
    parts = []
    if item.get("source") == "github" and not parent:
        parts.append(f"issue {item.get('sourceId')}")
    parts.append(f"{root_id[:8]} ({root_status})")
    if pull:
        parts.append(pull)
    for follow in item.get("followUps") or []:
        mark = "*" if follow["id"] == item["id"] else ""
        parts.append(f"{mark}{follow['id'][:8]} {follow['kind'].replace('_', ' ')} ({follow['status']})")
    return " → ".join(parts)


def _where(repo: str) -> str:
    """A local path as an absolute one, resolved here, where the user typed it (the factory
    may run elsewhere); URLs as given."""
    if is_local(repo) and not repo.lower().startswith("file://"):
        return str(Path(repo).expanduser().resolve())
    return repo


def status(json_out: JsonOpt = False) -> None:
    """Queue depth, workers, limits and today's usage."""
    data = api_client(settings_for_command()).get("/api/status")
    if json_out:
        print_json(data)
        return
    q, w, r, m = data["queue"], data["workers"], data["rateLimits"], data["metrics"]
    counts = q.get("byStatus") or {}
    stuck = int(counts.get("stuck", 0))
    out.print(  # the API's `failed` counts stuck items too; shown apart here
        f"queue      queued {q['queued']}  running {q['running']}  "
        f"completed {q['completed']}  failed {q['failed'] - stuck}  stuck {stuck}"
    )
    out.print(f"workers    active {w['active']}/{r['maxWorkers']}  stuck {w['stuck']}")
    out.print(
        f"today      iterations {r['iterationsToday']}/{r['dailyBudget']}  "
        f"tokens {m['totalTokensToday']}  cost ${r['costTodayUsd']:.2f}"
    )
    state = "can start workers" if r["canSpawn"] else "waiting: " + ", ".join(r["blockedBy"])
    out.print(f"limiter    {state}")
    if r.get("pausedUntil"):
        until = datetime.fromisoformat(r["pausedUntil"]).astimezone()
        out.print(
            f"paused     until {until:%H:%M:%S %Z} ({until:%Y-%m-%d}) by the {r['pauseReason']}:"
            " no worker sends a request before then"
        )
    elif r.get("singleFileWorker"):
        out.print(f"near limit {r['singleFileReason']}; worker {r['singleFileWorker'][:8]} has the turn")


def queue(
    all_items: Annotated[bool, typer.Option("--all", help="Include finished items.")] = False,
    status_filter: Annotated[str | None, typer.Option("--status", help="e.g. failed,stuck")] = None,
    repo: Annotated[str | None, typer.Option(help="Only this repository.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Items waiting or in progress (or all of them)."""
    client = api_client(settings_for_command())
    if all_items or status_filter or repo:
        items = client.get("/api/work", status=status_filter, repo=repo, limit=limit)
    else:
        items = client.get("/api/queue")[:limit]
    if json_out:
        print_json(items)
    elif not items:
        out.print("The queue is empty. Submit work with `factory submit` or label an issue `ai-factory`.")
    else:
        out.print(items_table(items))


SPEC_SOURCE = {
    "worktree": "live from the worker's SPEC.md",
    "report": "from the worker's last iteration report",
    "final": "every task was done when the item completed",
    "submitted": "as submitted",
}


def show(item_id: Annotated[str, typer.Argument(help="Work item id.")], json_out: JsonOpt = False) -> None:
    """One work item: its spec as it stands, and its events."""
    client = api_client(settings_for_command())
    item = client.get(f"/api/work/{item_id}", events="true")
    if json_out:
        print_json(item)
        return
    out.print(f"[bold]{item['id']}[/]  {status_text(item['status'])}  {item['priority']}")
    out.print(f"repo       {item['repo']} ({item['baseBranch']})", markup=False)
    out.print(f"source     {item['source']} {item['sourceId']} {item['sourceUrl']}".rstrip(), markup=False)
    out.print(f"attempts   {item['attempts']}/{item['maxAttempts']}")
    if item.get("prUrl"):
        out.print(f"result     {item['prUrl']}", markup=False)
    if item.get("parent") or item.get("followUps"):
        out.print(f"chain      {_chain(item)}", markup=False)
    if item.get("error"):
        out.print(f"error      {item['error']}", markup=False)
    out.print(
        f"usage      iterations {item['iterations']}  tokens {item['tokens']}  cost ${item['costUsd']:.4f}"
    )
    spec = client.get(f"/api/work/{item['id']}/spec")  # the boxes as the worker left them
    source = SPEC_SOURCE.get(spec["source"], spec["source"])
    out.print(f"\n[bold]spec[/]  {spec['done']}/{spec['total']} tasks done ({source})")
    out.print(spec["text"].rstrip(), markup=False)
    events = table("AGO", "KIND", "CHANGE", "REASON", fixed=("AGO", "KIND", "CHANGE"))
    events.title, events.title_justify = "events", "left"
    for event in item["events"]:
        change = f"{event['fromStatus'] or ''} -> {event['toStatus']}" if event["toStatus"] else ""
        events.add_row(age(event["createdAt"]), event["kind"], change, plain(event["reason"] or ""))
    out.print()
    out.print(events)


def cancel(item_id: Annotated[str, typer.Argument(help="Work item id.")]) -> None:
    """Cancel a work item (a running worker is stopped)."""
    result = api_client(settings_for_command()).post(f"/api/work/{item_id}/cancel")
    out.print(f"{result['item']['id']} {result['item']['status']}")


def retry(item_id: Annotated[str, typer.Argument(help="Work item id.")]) -> None:
    """Queue a failed, stuck or cancelled work item again."""
    result = api_client(settings_for_command()).post(f"/api/work/{item_id}/retry")
    out.print(f"{result['item']['id']} {result['item']['status']}")


def register(app: typer.Typer) -> None:
    for command in (submit, status, queue, show, cancel, retry):
        app.command()(command)

"""Work commands: submit, status, queue, show, cancel, retry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ai_factory.cli.context import api_client, settings_for_command
from ai_factory.cli.output import (
    JsonOpt,
    age,
    items_table,
    out,
    plain,
    print_json,
    status_text,
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
    json_out: JsonOpt = False,
) -> None:
    """Queue a spec for a repository; prints the new work item's id."""
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
    out.print(
        f"queue      queued {q['queued']}  running {q['running']}  "
        f"completed {q['completed']}  failed {q['failed']}"
    )
    out.print(f"workers    active {w['active']}/{r['maxWorkers']}  stuck {w['stuck']}")
    out.print(
        f"today      iterations {r['iterationsToday']}/{r['dailyBudget']}  "
        f"tokens {m['totalTokensToday']}  cost ${r['costTodayUsd']:.2f}"
    )
    state = "can start workers" if r["canSpawn"] else "waiting: " + ", ".join(r["blockedBy"])
    out.print(f"limiter    {state}")


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


def show(item_id: Annotated[str, typer.Argument(help="Work item id.")], json_out: JsonOpt = False) -> None:
    """One work item with its spec and its events."""
    item = api_client(settings_for_command()).get(f"/api/work/{item_id}", events="true")
    if json_out:
        print_json(item)
        return
    out.print(f"[bold]{item['id']}[/]  {status_text(item['status'])}  {item['priority']}")
    out.print(f"repo       {item['repo']} ({item['baseBranch']})", markup=False)
    out.print(f"source     {item['source']} {item['sourceId']} {item['sourceUrl']}".rstrip(), markup=False)
    out.print(f"attempts   {item['attempts']}/{item['maxAttempts']}")
    if item.get("prUrl"):
        out.print(f"result     {item['prUrl']}", markup=False)
    if item.get("error"):
        out.print(f"error      {item['error']}", markup=False)
    out.print(
        f"usage      iterations {item['iterations']}  tokens {item['tokens']}  cost ${item['costUsd']:.4f}"
    )
    out.print("\n[bold]spec[/]")
    out.print(item["spec"].rstrip(), markup=False)
    table = Table(box=None, pad_edge=False, title="events", title_justify="left")
    for column in ("AGO", "KIND", "CHANGE", "REASON"):
        table.add_column(column, overflow="fold")
    for event in item["events"]:
        change = f"{event['fromStatus'] or ''} -> {event['toStatus']}" if event["toStatus"] else ""
        table.add_row(age(event["createdAt"]), event["kind"], change, plain(event["reason"] or ""))
    out.print()
    out.print(table)


def cancel(item_id: Annotated[str, typer.Argument(help="Work item id.")]) -> None:
    """Cancel a work item that has not finished (a running worker is stopped)."""
    result = api_client(settings_for_command()).post(f"/api/work/{item_id}/cancel")
    out.print(f"{result['item']['id']} {result['item']['status']}")


def retry(item_id: Annotated[str, typer.Argument(help="Work item id.")]) -> None:
    """Queue a failed, stuck or cancelled work item again."""
    result = api_client(settings_for_command()).post(f"/api/work/{item_id}/retry")
    out.print(f"{result['item']['id']} {result['item']['status']}")


def register(app: typer.Typer) -> None:
    for command in (submit, status, queue, show, cancel, retry):
        app.command()(command)

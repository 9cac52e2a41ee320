"""The dashboard's pages (GET): overview, workers, queue, items, learnings, metrics.

Each handler reads what its page shows and renders one template. The live script
re-fetches the same URL when an event arrives and swaps the page's ``data-live``
regions, so a page is always rendered whole by the server, never patched from events.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ai_factory.core.errors import NotFoundError
from ai_factory.core.models import Priority, WorkItemStatus
from ai_factory.dashboard.formatting import describe_limits
from ai_factory.dashboard.logview import tag_lines
from ai_factory.dashboard.metrics import build_metrics
from ai_factory.dashboard.progress import spec_progress
from ai_factory.dashboard.web import LIVE_REFRESH_HEADER, DashboardDep, PageSession

router = APIRouter(include_in_schema=False)

LOG_TAIL_BYTES = 64 * 1024
LEARNINGS_LIMIT = 100
STATUSES = [s.value for s in WorkItemStatus]
PRIORITIES = [p.value for p in Priority]


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, dashboard: DashboardDep, _: PageSession) -> HTMLResponse:
    services = dashboard.services
    limits = await services.rate_limiter.status()
    workers = await dashboard.store.workers()
    return dashboard.render(
        request,
        "overview.html",
        counts=await dashboard.store.counts(),
        limits=limits,
        limiter=describe_limits(limits, services.clock.tz),
        workers=workers,
        stuck=[w for w in workers if w.worker.status.value == "stuck"],
        events=await dashboard.store.recent_events(limit=20),
        totals=await dashboard.store.totals(),
    )


@router.get("/workers", response_class=HTMLResponse)
async def workers(
    request: Request, dashboard: DashboardDep, _: PageSession, all: bool = False
) -> HTMLResponse:
    rows = await dashboard.store.workers(include_finished=True, limit=100 if all else 30)
    return dashboard.render(
        request,
        "workers.html",
        active=[w for w in rows if w.active],
        finished=[w for w in rows if not w.active],
        show_all=all,
    )


@router.get("/workers/{worker_id}", response_class=HTMLResponse)
async def worker(
    request: Request, worker_id: str, dashboard: DashboardDep, _: PageSession
) -> HTMLResponse:
    try:
        row = await dashboard.store.worker(await dashboard.services.ledger.worker_id(worker_id))
    except NotFoundError:
        row = None
    if row is None:
        return not_found(request, dashboard, f"There is no worker {worker_id}.")
    item = None
    lines, offset = [], 0
    if row.worker.work_item_id is not None:
        item = await dashboard.services.queue.get(row.worker.work_item_id)
    # A live refresh swaps only the data-live regions; the log outside them follows its own
    # stream, so only a full page load reads the log's tail.
    if item is not None and not request.headers.get(LIVE_REFRESH_HEADER):
        chunk = await dashboard.services.logs.read_async(
            item.id, limit=LOG_TAIL_BYTES, from_end=True
        )
        text = chunk.text
        if chunk.offset > 0:
            text = text.partition("\n")[2]  # the first line is cut
        complete, _, rest = text.rpartition("\n")
        lines = tag_lines(complete)
        offset = chunk.next_offset - len(rest.encode())
    return dashboard.render(
        request,
        "worker.html",
        row=row,
        item=item,
        log_lines=lines,
        log_offset=offset,
    )


@router.get("/queue", response_class=HTMLResponse)
async def queue(
    request: Request,
    dashboard: DashboardDep,
    _: PageSession,
    status: Annotated[list[str] | None, Query()] = None,
    priority: str | None = None,
    repo: str | None = None,
) -> HTMLResponse:
    chosen = [s for s in (status or []) if s in STATUSES]
    chosen_priority = priority if priority in PRIORITIES else None
    items = await dashboard.store.items(
        statuses=[WorkItemStatus(s) for s in chosen] or None,
        priority=Priority(chosen_priority) if chosen_priority else None,
        repo=repo or None,
    )
    return dashboard.render(
        request,
        "queue.html",
        items=items,
        counts=await dashboard.store.counts(),
        repos=await dashboard.store.repos(),
        statuses=STATUSES,
        priorities=PRIORITIES,
        chosen=chosen,
        chosen_priority=chosen_priority,
        chosen_repo=repo or "",
        filtered=bool(chosen or chosen_priority or repo),
    )


@router.get("/queue/new", response_class=HTMLResponse)
async def new_work(
    request: Request, dashboard: DashboardDep, _: PageSession, repo: str = ""
) -> HTMLResponse:
    return await render_submit_form(request, dashboard, values={"repo": repo})


async def render_submit_form(
    request: Request,
    dashboard: DashboardDep,
    *,
    values: dict[str, str],
    errors: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return dashboard.render(
        request,
        "submit.html",
        status_code=status_code,
        values={"priority": "medium", "base_branch": "main", **values},
        errors=errors or [],
        repos=await dashboard.store.repos(),
        priorities=PRIORITIES,
    )


@router.get("/work/{item_id}", response_class=HTMLResponse)
async def item(
    request: Request, item_id: str, dashboard: DashboardDep, _: PageSession
) -> HTMLResponse:
    try:
        return await render_item(request, dashboard, item_id)
    except NotFoundError:
        return not_found(request, dashboard, f"There is no work item {item_id}.")


def not_found(request: Request, dashboard: DashboardDep, message: str) -> HTMLResponse:
    return dashboard.render(
        request, "error.html", status_code=404, title="Not found", message=message
    )


async def render_item(
    request: Request,
    dashboard: DashboardDep,
    item_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    services = dashboard.services
    work = await services.queue.get(item_id)
    events = await services.queue.events(work.id, limit=10000)
    attempts = await dashboard.store.item_workers(work.id)
    current = next((w for w in reversed(attempts) if w.active), None)
    # The item's totals are written when an attempt ends; while one runs, its worker's own
    # figures (from its heartbeats) are the newer ones.
    live = current.worker if current else None
    usage = {
        "iterations": max(work.iterations, live.current_iteration if live else 0),
        "tokens": max(work.tokens, live.total_tokens if live else 0),
        "cost_usd": max(work.cost_usd, live.cost_usd if live else 0.0),
    }
    parent, follow_ups = await services.ledger.chain(work)
    return dashboard.render(
        request,
        "item.html",
        status_code=status_code,
        page_url=f"/work/{work.id}",
        item=work,
        spec=await asyncio.to_thread(
            spec_progress, work, events, home=services.settings.factory_home
        ),
        events=list(reversed(events)),
        attempts=attempts,
        current=current,
        usage=usage,
        priorities=PRIORITIES,
        error=error,
        result_is_link=bool(work.pr_url and work.pr_url.startswith(("https://", "http://"))),
        parent=parent,
        follow_ups=follow_ups,
    )


@router.get("/learnings", response_class=HTMLResponse)
async def learnings(
    request: Request,
    dashboard: DashboardDep,
    _: PageSession,
    q: Annotated[str, Query(max_length=4000)] = "",
    repo: Annotated[str, Query(max_length=1000)] = "",
    obsolete: bool = False,  # list obsolete learnings too (a search never finds them)
    edit: Annotated[str, Query(max_length=100)] = "",  # the id of the learning being edited
) -> HTMLResponse:
    # The API's search, without counting the look as a use: browsing is not using.
    found = await dashboard.services.learnings.search(
        repo=repo or None, search=q or None, limit=LEARNINGS_LIMIT, count_use=False,
        include_obsolete=obsolete,
    )
    return dashboard.render(
        request,
        "learnings.html",
        learnings=found,
        q=q,
        repo=repo,
        obsolete=obsolete,
        editing=edit,
        repos=await dashboard.store.learning_repos(),
    )


@router.get("/stats", response_class=HTMLResponse)
async def stats(request: Request, dashboard: DashboardDep, _: PageSession) -> HTMLResponse:
    view = await build_metrics(dashboard.store, dashboard.services.clock)
    return dashboard.render(request, "metrics.html", metrics=view)

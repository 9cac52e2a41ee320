"""Server-Sent Events for the dashboard: the factory's events, and a worker log's new lines.

``GET /live/events`` relays the `EventHub` (``event: factory`` with the FactoryEvent
JSON). When the hub reconnected, or this subscriber fell behind and lost events, it
sends ``event: reconnected``; either way the page re-renders from the server, which
is the truth (events are only hints). A comment every PING_S keeps proxies open.

``GET /live/logs/{item_id}?offset=`` follows the item's worker log from a byte offset
(``Last-Event-ID`` wins after a reconnect): ``event: log`` carries whole lines, tagged
(`logview`), with the offset after them as the event id; ``event: reset`` says the log
was rotated and reading restarted at 0.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from ai_factory.dashboard.logview import tag_lines
from ai_factory.dashboard.web import DashboardDep
from ai_factory.orchestrator.events import RECONNECTED, EventHub
from ai_factory.orchestrator.logs import MAX_LOG_OFFSET, WorkerLogs

router = APIRouter(prefix="/live", include_in_schema=False)

PING_S = 15.0
LOG_POLL_S = 0.5
RETRY_MS = 2000
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _message(event: str, data: object, *, event_id: int | None = None) -> str:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def factory_events(hub: EventHub, *, ping_s: float = PING_S) -> AsyncIterator[str]:
    subscription = hub.subscribe(size=200)
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            dropped = subscription.dropped
            try:
                async with asyncio.timeout(ping_s):
                    event = await subscription.get()
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if event.kind == RECONNECTED or subscription.dropped != dropped:
                yield _message("reconnected", {"kind": RECONNECTED})
            else:
                yield _message("factory", event.model_dump(mode="json", by_alias=True))
    finally:
        subscription.close()


async def log_lines(
    logs: WorkerLogs,
    item_id: UUID,
    offset: int,
    *,
    poll_s: float = LOG_POLL_S,
    ping_s: float = PING_S,
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    pending = ""
    quiet = 0.0
    while True:
        chunk = await logs.read_async(item_id, offset=offset)
        if chunk.reset:
            pending = ""
            yield _message("reset", {"offset": 0}, event_id=0)
        text = pending + chunk.text
        complete, newline, pending = text.rpartition("\n")
        if not newline:
            complete, pending = "", text
        offset = chunk.next_offset
        if complete:
            quiet = 0.0
            lines = [line.model_dump() for line in tag_lines(complete)]
            yield _message("log", {"lines": lines}, event_id=offset - len(pending.encode()))
        if chunk.next_offset < chunk.size:
            continue  # more is there already
        await asyncio.sleep(poll_s)
        quiet += poll_s
        if quiet >= ping_s:
            quiet = 0.0
            yield ": ping\n\n"


@router.get("/events")
async def events(request: Request, dashboard: DashboardDep) -> Response:
    if dashboard.protected and dashboard.session_of(request) is None:
        return Response("login required", status_code=401, media_type="text/plain")
    stream = factory_events(dashboard.services.runtime.events)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/logs/{item_id}")
async def logs(
    request: Request,
    item_id: str,
    dashboard: DashboardDep,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
) -> Response:
    if dashboard.protected and dashboard.session_of(request) is None:
        return Response("login required", status_code=401, media_type="text/plain")
    item = await dashboard.services.queue.get(item_id)
    resume = request.headers.get("last-event-id", "")
    # isdigit() alone admits "²" and friends, which int() refuses.
    start = int(resume) if resume.isascii() and resume.isdigit() and len(resume) < 19 else offset
    stream = log_lines(dashboard.services.logs, item.id, start)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)

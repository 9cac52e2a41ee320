"""Work-item routes: submit, list, show, cancel, retry, reprioritise, the queue."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ai_factory.core.errors import InvalidInputError
from ai_factory.core.models import (
    CreateWorkItemInput,
    PriorityUpdate,
    Source,
    WireModel,
    WorkItem,
    WorkItemDetail,
    WorkItemEvent,
    WorkItemStatus,
)
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep
from ai_factory.orchestrator.api.responses import ADMIN, CHANGE, errors

router = APIRouter(prefix="/api", tags=["work"], dependencies=[AdminDep], responses=ADMIN)
SAME_SOURCE = {
    "model": WorkItem,
    "description": "An item of the same source is already active: that item.",
}


class ActionResult(WireModel):
    success: bool = True
    item: WorkItem


def parse_statuses(raw: list[str] | None) -> list[WorkItemStatus] | None:
    if not raw:
        return None
    names = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    try:
        return [WorkItemStatus(name) for name in names]
    except ValueError:
        valid = ", ".join(s.value for s in WorkItemStatus)
        raise InvalidInputError(f"status: must be one of {valid}") from None


@router.post(
    "/work",
    response_model=WorkItem,
    status_code=201,
    responses={200: SAME_SOURCE, **CHANGE, **errors(409)},
)
async def submit(body: CreateWorkItemInput, services: ServicesDep, response: Response) -> WorkItem:
    item, created = await services.queue.add(body)
    if not created:
        response.status_code = 200
    return item


@router.get("/work", response_model=list[WorkItem])
async def list_work(
    services: ServicesDep,
    status: Annotated[list[str] | None, Query()] = None,
    repo: str | None = None,
    source: Source | None = None,
    source_id: Annotated[str | None, Query(alias="sourceId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[WorkItem]:
    return await services.queue.list(
        statuses=parse_statuses(status),
        repo=repo,
        source=source,
        source_id=source_id,
        limit=limit,
        offset=offset,
    )


@router.get("/work/{item_id}", response_model=WorkItemDetail, responses=errors(404))
async def show(item_id: str, services: ServicesDep, events: bool = False) -> WorkItemDetail:
    item = await services.queue.get(item_id)
    trail = await services.queue.events(item.id) if events else []
    parent, follow_ups = await services.ledger.chain(item)
    return WorkItemDetail(**item.model_dump(), events=trail, parent=parent, follow_ups=follow_ups)


@router.get("/work/{item_id}/events", response_model=list[WorkItemEvent], responses=errors(404))
async def events(
    item_id: str,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[WorkItemEvent]:
    return await services.queue.events(item_id, after=after, limit=limit)


class SpecState(WireModel):
    """An item's SPEC.md as it stands: boxes checked as far as anyone knows
    (`dashboard.progress`: the live worktree, the last iteration report, or, for a
    completed item, every task done), with the count of tasks done."""

    text: str
    source: str  # worktree, report, final or submitted
    done: int
    total: int


@router.get("/work/{item_id}/spec", response_model=SpecState, responses=errors(404))
async def spec(item_id: str, services: ServicesDep) -> SpecState:
    from ai_factory.dashboard.progress import spec_progress

    item = await services.queue.get(item_id)
    trail = await services.queue.events(item.id, limit=10000)
    state = await asyncio.to_thread(spec_progress, item, trail, home=services.settings.factory_home)
    return SpecState(text=state.text, source=state.source.value, done=state.done, total=state.total)


@router.post(
    "/work/{item_id}/cancel", response_model=ActionResult, responses={**CHANGE, **errors(404, 409)}
)
async def cancel(item_id: str, services: ServicesDep) -> ActionResult:
    return ActionResult(item=await services.queue.cancel(item_id))


@router.post(
    "/work/{item_id}/retry", response_model=ActionResult, responses={**CHANGE, **errors(404, 409)}
)
async def retry(item_id: str, services: ServicesDep) -> ActionResult:
    return ActionResult(item=await services.queue.retry(item_id))


@router.patch("/work/{item_id}", response_model=WorkItem, responses={**CHANGE, **errors(404, 409)})
async def reprioritise(item_id: str, body: PriorityUpdate, services: ServicesDep) -> WorkItem:
    return await services.queue.set_priority(item_id, body.priority)


@router.get("/queue", response_model=list[WorkItem])
async def queue(services: ServicesDep) -> list[WorkItem]:
    """Items waiting or in progress (queued, assigned, running), newest first."""
    active = [WorkItemStatus.QUEUED, WorkItemStatus.ASSIGNED, WorkItemStatus.RUNNING]
    return await services.queue.list(statuses=active, limit=1000)

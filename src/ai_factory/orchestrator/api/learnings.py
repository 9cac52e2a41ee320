"""Learnings routes: search (admin, or a worker with its own token), add, edit and delete
(admin), and a worker's context (the worker itself).

``GET /api/learnings?repo=&search=&limit=&preferCompleted=&includeObsolete=`` lists the
learnings of `repo` plus the global ones (every repository's when `repo` is absent): best
match first when `search` is given (with `preferCompleted`, learnings given to items that
completed first among equals), and each one found that way counts as used; newest first
otherwise, obsolete ones too with `includeObsolete`. An unknown repo is not an error: it
has no learnings of its own. ``POST`` with no repo (or ``"*"``) saves a global learning;
saving a text already stored in that scope, in the same words or in others, answers 200
with the existing learning, its saveCount raised, instead of 201. ``PATCH`` changes the
text or marks the learning obsolete (or current again).

``GET /api/worker/{id}/learnings?search=`` is what a worker gets for its spec: its item's
repository's learnings and the global ones within LEARNINGS_BUDGET_TOKENS, each recorded
as given to the item.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from ai_factory.core.ids import parse_id
from ai_factory.core.learnings.models import LearningContext, LearningRecord
from ai_factory.core.models import CreateLearningInput, Success, UpdateLearningInput
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep, WorkerDep, require_reader
from ai_factory.orchestrator.api.responses import ADMIN, CHANGE, errors

router = APIRouter(prefix="/api", tags=["learnings"], responses=ADMIN)


@router.get(
    "/learnings",
    response_model=list[LearningRecord],
    dependencies=[Depends(require_reader)],
    responses=errors(404),  # X-Worker-Id names no worker
)
async def search(
    services: ServicesDep,
    repo: Annotated[str | None, Query(max_length=1000)] = None,
    # a query, not a document (workers send 500 characters); one over the limit must still
    # fit in a URL the server reads, to be answered 422 and not dropped as malformed HTTP
    search: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    prefer_completed: Annotated[bool, Query(alias="preferCompleted")] = False,
    include_obsolete: Annotated[bool, Query(alias="includeObsolete")] = False,
) -> list[LearningRecord]:
    return await services.learnings.search(
        repo=repo, search=search, limit=limit, prefer_completed=prefer_completed,
        include_obsolete=include_obsolete,
    )


@router.post(
    "/learnings",
    response_model=LearningRecord,
    status_code=201,
    dependencies=[AdminDep],
    responses={
        200: {"model": LearningRecord, "description": "Already stored: that one."},
        **CHANGE,
    },
)
async def add(
    body: CreateLearningInput, services: ServicesDep, response: Response
) -> LearningRecord:
    saved = await services.learnings.save(body.repo, body.content)
    if not saved.created:
        response.status_code = 200
    return saved


@router.patch(
    "/learnings/{learning_id}",
    response_model=LearningRecord,
    dependencies=[AdminDep],
    responses={**CHANGE, **errors(404, 409)},  # 409: the repo already has the new text
)
async def edit(learning_id: str, body: UpdateLearningInput, services: ServicesDep) -> LearningRecord:
    return await services.learnings.edit(parse_id(learning_id, "learning"), body)


@router.get(
    "/worker/{worker_id}/learnings",
    response_model=LearningContext,
    tags=["workers"],
    responses=errors(401, 404, 409, 429),
)
async def context(
    worker: WorkerDep,
    services: ServicesDep,
    search: Annotated[str, Query(max_length=2000)] = "",
) -> LearningContext:
    item = await services.workers.current_item(worker, "learnings")
    return await services.learnings.context(
        repo=item.repo, search=search, work_item_id=item.id,
        budget_tokens=services.settings.learnings_budget_tokens,
    )


@router.delete(
    "/learnings/{learning_id}",
    response_model=Success,
    dependencies=[AdminDep],
    responses={**CHANGE, **errors(404)},
)
async def delete(learning_id: str, services: ServicesDep) -> Success:
    await services.learnings.delete(parse_id(learning_id, "learning"))
    return Success()

"""Learnings routes: search (admin, or a worker with its own token), add and delete (admin).

``GET /api/learnings?repo=&search=&limit=`` lists the learnings of `repo` plus the global
ones (every repository's when `repo` is absent): best match first when `search` is given,
and each one found that way counts as used; newest first otherwise. An unknown repo is
not an error: it has no learnings of its own. ``POST`` with no repo (or ``"*"``) saves a
global learning; saving a text already stored in that scope answers 200 with the
existing learning, its saveCount raised, instead of 201.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from ai_factory.core.ids import parse_id
from ai_factory.core.learnings.models import LearningRecord
from ai_factory.core.models import CreateLearningInput, Success
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep, require_reader
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
) -> list[LearningRecord]:
    return await services.learnings.search(repo=repo, search=search, limit=limit)


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


@router.delete(
    "/learnings/{learning_id}",
    response_model=Success,
    dependencies=[AdminDep],
    responses={**CHANGE, **errors(404)},
)
async def delete(learning_id: str, services: ServicesDep) -> Success:
    await services.learnings.delete(parse_id(learning_id, "learning"))
    return Success()

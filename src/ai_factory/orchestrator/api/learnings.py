"""Learnings routes: search (workers may read), add and delete (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ai_factory.core.models import CreateLearningInput, Learning, WireModel
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep, require_reader
from ai_factory.orchestrator.queue import parse_id

router = APIRouter(prefix="/api", tags=["learnings"])


class Success(WireModel):
    success: bool = True


@router.get("/learnings", response_model=list[Learning], dependencies=[Depends(require_reader)])
async def search(
    services: ServicesDep,
    repo: str | None = None,
    search: Annotated[str | None, Query(max_length=100_000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Learning]:
    return await services.learnings.search(repo=repo, search=search, limit=limit)


@router.post("/learnings", response_model=Learning, status_code=201, dependencies=[AdminDep])
async def add(body: CreateLearningInput, services: ServicesDep) -> Learning:
    return await services.learnings.save(body.repo, body.content)


@router.delete("/learnings/{learning_id}", response_model=Success, dependencies=[AdminDep])
async def delete(learning_id: str, services: ServicesDep) -> Success:
    await services.learnings.delete(parse_id(learning_id, "learning"))
    return Success()




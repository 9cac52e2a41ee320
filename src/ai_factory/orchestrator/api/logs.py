"""Worker log route: read an item's worker output by byte offset (`factory logs -f` polls it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep
from ai_factory.orchestrator.api.responses import ADMIN, errors
from ai_factory.orchestrator.logs import MAX_LOG_OFFSET, READ_LIMIT_BYTES, LogChunk

router = APIRouter(prefix="/api", tags=["work"], dependencies=[AdminDep], responses=ADMIN)


@router.get("/work/{item_id}/logs", response_model=LogChunk, responses=errors(404))
async def logs(
    item_id: str,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=READ_LIMIT_BYTES)] = READ_LIMIT_BYTES,
) -> LogChunk:
    item = await services.queue.get(item_id)
    return await services.logs.read_async(item.id, offset=offset, limit=limit)

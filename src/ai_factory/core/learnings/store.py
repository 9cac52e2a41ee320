"""The learnings store: save what workers learned, find it again for the next task."""

from __future__ import annotations

import logging
from uuid import UUID

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import NotFoundError
from ai_factory.core.models import Learning

log = logging.getLogger(__name__)

Q = load_queries("learnings")

GLOBAL_REPO = "*"


class LearningStore:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def save(
        self,
        repo: str | None,
        content: str,
        *,
        worker_id: UUID | None = None,
        work_item_id: UUID | None = None,
    ) -> Learning:
        row = await self.db.fetch_one(
            Q["insert"],
            {
                "repo": repo or GLOBAL_REPO,
                "content": content.strip(),
                "worker_id": worker_id,
                "work_item_id": work_item_id,
            },
        )
        assert row is not None
        return Learning.model_validate(row)

    async def save_many(
        self, repo: str, contents: list[str], *, worker_id: UUID, work_item_id: UUID
    ) -> None:
        for content in contents:
            await self.save(repo, content, worker_id=worker_id, work_item_id=work_item_id)

    async def search(
        self,
        *,
        repo: str | None = None,
        search: str | None = None,
        limit: int = 50,
        count_use: bool = True,
    ) -> list[Learning]:
        rows = await self.db.fetch_all(
            Q["search"],
            {"repo": repo, "query": search or None, "limit": limit, "count_use": count_use},
        )
        return [Learning.model_validate(r) for r in rows]

    async def delete(self, learning_id: UUID) -> None:
        if await self.db.fetch_one(Q["delete"], {"id": learning_id}) is None:
            raise NotFoundError(f"learning {learning_id} not found")

"""File locks in PostgreSQL's `file_locks` table; one transaction per acquire."""

from __future__ import annotations

import logging
from uuid import UUID

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.models import LockResult
from ai_factory.orchestrator.conflicts.base import LOCK_TTL_S, normalize_paths

log = logging.getLogger(__name__)

Q = load_queries("file_locks")


class PostgresConflictDetector:
    in_database = True

    def __init__(self, *, db: Database, ttl_s: float | None = None) -> None:
        self.db = db
        self.ttl_s = ttl_s or LOCK_TTL_S

    async def acquire(self, worker_id: UUID, repo: str, files: list[str]) -> LockResult:
        wanted = normalize_paths(files)
        params = {"repo": repo, "files": wanted, "worker_id": worker_id, "ttl_s": self.ttl_s}
        conflicts: list[str] = []
        async with self.db.transaction() as conn:
            await conn.execute(Q["purge_expired"], params)
            cur = await conn.execute(Q["take"], params)
            got = {row["file_path"] for row in await cur.fetchall()}
            conflicts = [f for f in wanted if f not in got]
            if conflicts:
                raise psycopg.Rollback()  # all or nothing: undo the locks this call took
        if conflicts:
            log.info("locks.conflict worker=%s repo=%s files=%s", worker_id, repo, conflicts)
            return LockResult(acquired=[], conflicts=conflicts)
        return LockResult(acquired=wanted, conflicts=[])

    async def release(self, worker_id: UUID, repo: str, files: list[str]) -> list[str]:
        rows = await self.db.fetch_all(
            Q["release"], {"worker_id": worker_id, "repo": repo, "files": normalize_paths(files)}
        )
        return sorted(r["file_path"] for r in rows)

    async def release_all(self, worker_id: UUID) -> int:
        rows = await self.db.fetch_all(Q["release_all"], {"worker_id": worker_id})
        return len(rows)

    async def renew(self, worker_id: UUID) -> None:
        await self.db.execute(Q["renew"], {"worker_id": worker_id, "ttl_s": self.ttl_s})

    async def holders(self, repo: str) -> dict[str, UUID]:
        rows = await self.db.fetch_all(Q["holders"], {"repo": repo})
        return {r["file_path"]: r["worker_id"] for r in rows}

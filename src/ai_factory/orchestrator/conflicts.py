"""The conflict detector: file locks that keep two workers off the same file.

`acquire` is all-or-nothing for the set it is given: either the worker now holds
every file, or it holds none of the new ones and learns which are taken. Keys are
scoped by repository. Locks expire after a TTL that heartbeats renew, so a dead
worker's locks free themselves even if nobody releases them.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Protocol
from uuid import UUID

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import InvalidInputError
from ai_factory.core.models import LockResult

log = logging.getLogger(__name__)

LOCK_TTL_S = 3600.0

Q = load_queries("file_locks")


def normalize_path(path: str) -> str:
    """A repo-relative POSIX path; absolute paths and escapes are refused."""
    cleaned = posixpath.normpath(path.replace("\\", "/").strip())
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../") or cleaned == ".":
        raise InvalidInputError(f"{path!r} is not a path inside the repository")
    return cleaned


def normalize_paths(files: list[str]) -> list[str]:
    return sorted({normalize_path(f) for f in files})


class ConflictDetector(Protocol):
    async def acquire(self, worker_id: UUID, repo: str, files: list[str]) -> LockResult: ...

    async def release(self, worker_id: UUID, repo: str, files: list[str]) -> list[str]: ...

    async def release_all(self, worker_id: UUID) -> int: ...

    async def renew(self, worker_id: UUID) -> None: ...

    async def holders(self, repo: str) -> dict[str, UUID]: ...


class PostgresConflictDetector:
    """Locks in the `file_locks` table; one transaction per acquire."""

    def __init__(self, *, db: Database, ttl_s: float = LOCK_TTL_S) -> None:
        self.db = db
        self.ttl_s = ttl_s

    async def acquire(self, worker_id: UUID, repo: str, files: list[str]) -> LockResult:
        wanted = normalize_paths(files)
        params = {"repo": repo, "files": wanted, "worker_id": worker_id, "ttl_s": self.ttl_s}
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

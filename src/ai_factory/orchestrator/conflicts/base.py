"""The lock contract both backends keep, and repo-relative path normalisation."""

from __future__ import annotations

import posixpath
from typing import Protocol
from uuid import UUID

from ai_factory.core.errors import InvalidInputError
from ai_factory.core.models import LockResult

LOCK_TTL_S = 3600.0


def normalize_path(path: str) -> str:
    """A repo-relative POSIX path; absolute paths and escapes are refused."""
    cleaned = posixpath.normpath(path.replace("\\", "/").strip())
    if cleaned.startswith("/") or cleaned in ("..", ".") or cleaned.startswith("../"):
        raise InvalidInputError(f"{path!r} is not a path inside the repository")
    return cleaned


def normalize_paths(files: list[str]) -> list[str]:
    return sorted({normalize_path(f) for f in files})


class ConflictDetector(Protocol):
    # True when the locks live in the factory's database, so that releasing a worker's
    # locks can join the transaction that finishes the worker (the ledger's).
    in_database: bool

    async def acquire(self, worker_id: UUID, repo: str, files: list[str]) -> LockResult: ...

    async def release(self, worker_id: UUID, repo: str, files: list[str]) -> list[str]: ...

    async def release_all(self, worker_id: UUID) -> int: ...

    async def renew(self, worker_id: UUID) -> None: ...

    async def holders(self, repo: str) -> dict[str, UUID]: ...

"""The conflict detector: file locks that keep two workers off the same file.

`acquire(worker, repo, files)` is all-or-nothing for the set it is given: either
the worker now holds every file, or it holds none of the new ones and learns
which are taken. Keys are scoped by repository; the holder's worker id is the
token, so only the holder can release. Locks expire after a TTL that heartbeats
renew, so a dead worker's locks free themselves even if nobody releases them.

Two backends with one contract: Redis (`RedisConflictDetector`, one Lua script per
call) when REDIS_URL is set, PostgreSQL (`PostgresConflictDetector`) otherwise.
"""

from ai_factory.orchestrator.conflicts.base import (
    LOCK_TTL_S,
    ConflictDetector,
    normalize_path,
    normalize_paths,
)
from ai_factory.orchestrator.conflicts.postgres import PostgresConflictDetector
from ai_factory.orchestrator.conflicts.redis import RedisConflictDetector

__all__ = [
    "LOCK_TTL_S",
    "ConflictDetector",
    "PostgresConflictDetector",
    "RedisConflictDetector",
    "normalize_path",
    "normalize_paths",
]

"""File locks in Redis: one Lua script per call, so each call is atomic.

Keys share one hash tag (``{<prefix>}``) so a script's keys are always in one slot.
A lock key is ``{p}:lock:<repo digest>:<path>`` holding the holder's worker id (the
token); each holder has a set of the keys it holds (release_all and renew walk that
set, never ``KEYS``), and each repo a set of its locked paths (for `holders`).
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ai_factory.core.errors import StoreError
from ai_factory.core.models import LockResult
from ai_factory.orchestrator.conflicts.base import LOCK_TTL_S, normalize_paths

log = logging.getLogger(__name__)


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text("utf-8")


class RedisConflictDetector:
    in_database = False

    def __init__(self, *, redis: aioredis.Redis, prefix: str = "factory", ttl_s: float = LOCK_TTL_S) -> None:
        self.redis = redis
        self.tag = "{" + prefix + "}"
        self.ttl_ms = int(ttl_s * 1000)
        self._acquire = redis.register_script(_script("acquire"))
        self._release = redis.register_script(_script("release"))
        self._release_all = redis.register_script(_script("release_all"))
        self._renew = redis.register_script(_script("renew"))

    def _repo(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()[:16]

    def _lock_key(self, repo: str, path: str) -> str:
        return f"{self.tag}:lock:{self._repo(repo)}:{path}"

    def _held_key(self, worker_id: UUID) -> str:
        return f"{self.tag}:held:{worker_id}"

    def _repo_key(self, repo: str) -> str:
        return f"{self.tag}:repo:{self._repo(repo)}"

    def _keys_and_args(self, worker_id: UUID, repo: str, paths: list[str]) -> tuple[list[str], list[str]]:
        keys = [self._held_key(worker_id), self._repo_key(repo)]
        keys += [self._lock_key(repo, p) for p in paths]
        args = [str(worker_id), str(self.ttl_ms), *paths]
        return keys, args

    async def acquire(self, worker_id: UUID, repo: str, files: list[str]) -> LockResult:
        wanted = normalize_paths(files)
        keys, args = self._keys_and_args(worker_id, repo, wanted)
        try:
            taken = await self._acquire(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"lock service unavailable: {exc}") from exc
        conflicts = sorted(_text(t) for t in taken)
        if conflicts:
            log.info("locks.conflict worker=%s repo=%s files=%s", worker_id, repo, conflicts)
            return LockResult(acquired=[], conflicts=conflicts)
        return LockResult(acquired=wanted, conflicts=[])

    async def release(self, worker_id: UUID, repo: str, files: list[str]) -> list[str]:
        keys, args = self._keys_and_args(worker_id, repo, normalize_paths(files))
        try:
            released = await self._release(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"lock service unavailable: {exc}") from exc
        return sorted(_text(r) for r in released)

    async def release_all(self, worker_id: UUID) -> int:
        try:
            return int(await self._release_all(keys=[self._held_key(worker_id)], args=[str(worker_id)]))
        except RedisError as exc:
            raise StoreError(f"lock service unavailable: {exc}") from exc

    async def renew(self, worker_id: UUID) -> None:
        try:
            await self._renew(keys=[self._held_key(worker_id)], args=[str(worker_id), str(self.ttl_ms)])
        except RedisError as exc:
            raise StoreError(f"lock service unavailable: {exc}") from exc

    async def holders(self, repo: str) -> dict[str, UUID]:
        repo_key = self._repo_key(repo)
        paths = sorted(_text(p) for p in await self.redis.smembers(repo_key))
        if not paths:
            return {}
        values = await self.redis.mget([self._lock_key(repo, p) for p in paths])
        held: dict[str, UUID] = {}
        gone = []
        for path, value in zip(paths, values, strict=True):
            if value is None:
                gone.append(path)
            else:
                held[path] = UUID(_text(value))
        if gone:
            await self.redis.srem(repo_key, *gone)
        return held


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

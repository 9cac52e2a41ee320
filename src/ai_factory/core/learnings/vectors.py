"""Vector ranking of learnings on any PostgreSQL: pgvector's HNSW index where the server has
the extension, exact cosine similarity in the orchestrator where it does not.

Both rank by the same thing, the cosine similarity of unit-length vectors stored as
``real[]`` (migration 002), best first, over the current (not obsolete) learnings of the
embedder in use; only the work is done elsewhere.

* `PgvectorRanker`: the partial HNSW index per embedder (vector.sql), approximate.
* `ExactRanker`: a worker's scope is a repo's learnings plus the global ones, hundreds or a
  few thousand rows, so a matrix product over all of them is exact and takes well under a
  millisecond. Each repo's vectors are cached in this process (least recently used first
  out, at most `CACHE_MAX_ROWS` rows) and checked against `learning_scopes`, whose version
  triggers raise on every change that matters (migration 008): one indexed read per
  search, and a repo's vectors are read again only after they changed. A search over all
  repos scans every repo's vectors up to `ALL_REPOS_MAX_ROWS` learnings; past that it
  ranks only the full-text candidates it is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol
from uuid import UUID

import numpy
import psycopg
from psycopg import sql
from psycopg.adapt import Loader

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries, split_queries
from ai_factory.core.learnings.embedder import Embedder

log = logging.getLogger(__name__)

Q = load_queries("learnings")

HNSW_MAX_DIMENSIONS = 2000
CACHE_MAX_ROWS = 200_000  # 200 MB of float32 at 256 dimensions, at most
# A search over every repo (the dashboard's, an admin's) scans them all only up to this
# many learnings; past it the vectors rank the full-text candidates.
ALL_REPOS_MAX_ROWS = 20_000
REAL_ARRAY_OID = 1021
# Binary real[]: a 20-byte header (one dimension), then (int32 length, float4) per element.
_ELEMENT = numpy.dtype([("length", ">i4"), ("value", ">f4")])
_HEADER_BYTES = 20

Ranked = list[tuple[UUID, float]]


class VectorRanker(Protocol):
    """Ranks learnings by cosine similarity to a query vector."""

    description: str

    async def prepare(self) -> None: ...

    async def rank(
        self, vector: list[float], *, repos: list[str] | None, candidates: int,
        among: list[UUID] | None = None,
    ) -> Ranked: ...


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


@cache
def vector_templates() -> dict[str, str]:
    """``{name: sql}`` of vector.sql beside this module (same ``-- name:`` markers as the
    named queries; kept apart because they are templates, complete only per embedder)."""
    text = resources.files(__package__).joinpath("vector.sql").read_text("utf-8")
    return split_queries(text, group="vector")


def index_name(embedder_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", embedder_name.lower()).strip("_")[:32]
    digest = hashlib.sha256(embedder_name.encode()).hexdigest()[:8]
    return f"learnings_vec_{slug}_{digest}"


def ranker_for(db: Database, embedder: Embedder) -> VectorRanker:
    """pgvector's index where the server has the extension, exact ranking where not."""
    if db.has_vector and embedder.dimensions <= HNSW_MAX_DIMENSIONS:
        return PgvectorRanker(db=db, embedder=embedder)
    return ExactRanker(db=db, embedder=embedder)


class PgvectorRanker:
    def __init__(self, *, db: Database, embedder: Embedder) -> None:
        self.db = db
        self.embedder = embedder
        self.description = f"pgvector HNSW index ({embedder.name})"
        params = {
            "dims": sql.Literal(embedder.dimensions),
            "embedder": sql.Literal(embedder.name),
            "index": sql.Identifier(index_name(embedder.name)),
        }
        templates = vector_templates()
        self.rank_sql = {
            scoped: sql.SQL(templates[query]).format(**params).as_string()
            for scoped, query in ((False, "rank_vector"), (True, "rank_vector_in"))
        }
        self.create_index_sql = sql.SQL(templates["create_vector_index"]).format(**params).as_string()
        self._iterative_scan = False

    async def prepare(self) -> None:
        row = await self.db.fetch_one(Q["vector_version"])
        numbers = re.findall(r"\d+", row["version"]) if row else []
        self._iterative_scan = tuple(int(n) for n in numbers[:2]) >= (0, 8)
        try:
            async with self.db.transaction() as conn:
                # Two processes starting together would both try to create it.
                await conn.execute(Q["lock_index_creation"])
                await conn.execute(self.create_index_sql)
        except psycopg.Error as exc:
            # Search still works, by an exact scan in the server; say why it may be slow.
            log.warning("learnings.vector_index_failed embedder=%s error=%s", self.embedder.name, exc)

    async def rank(
        self, vector: list[float], *, repos: list[str] | None, candidates: int,
        among: list[UUID] | None = None,
    ) -> Ranked:
        params: dict[str, Any] = {
            "embedding": vector_literal(vector), "repos": repos, "candidates": candidates,
        }
        async with self.db.transaction() as conn:
            await conn.execute(Q["hnsw_ef_search"], {"ef_search": str(max(candidates, 40))})
            if self._iterative_scan:
                await conn.execute(Q["hnsw_iterative_scan"])
            cur = await conn.execute(self.rank_sql[repos is not None], params)
            rows = await cur.fetchall()
        # relaxed_order may return neighbours slightly out of order.
        ranked = [(r["id"], float(r["score"])) for r in rows]
        ranked.sort(key=lambda item: item[1], reverse=True)
        return ranked


class _RawArray(Loader):
    """Binary real[] as its bytes: numpy reads them in one go (psycopg would build a list
    of Python floats, ten times slower for a repo's worth of vectors)."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Any) -> bytes:
        return bytes(data)


@dataclass
class _RepoVectors:
    version: int
    ids: list[UUID]
    matrix: numpy.ndarray  # rows x dimensions, float32, unit rows


class ExactRanker:
    def __init__(self, *, db: Database, embedder: Embedder, max_rows: int = CACHE_MAX_ROWS) -> None:
        self.db = db
        self.embedder = embedder
        self.max_rows = max_rows
        self.description = f"exact cosine similarity in the orchestrator ({embedder.name})"
        self._cache: OrderedDict[str, _RepoVectors] = OrderedDict()
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        return None

    async def rank(
        self, vector: list[float], *, repos: list[str] | None, candidates: int,
        among: list[UUID] | None = None,
    ) -> Ranked:
        parts = await self._vectors(repos)
        query = numpy.asarray(vector, dtype=numpy.float32)
        if parts is None:  # too many learnings to hold: rank only the ones given
            return await self._rank_among(query, among or [], candidates)
        ids = [i for part in parts for i in part.ids]
        if not ids:
            return []
        scores = numpy.concatenate([part.matrix @ query for part in parts])
        top = min(candidates, len(ids))
        best = numpy.argpartition(-scores, top - 1)[:top]
        best = best[numpy.argsort(-scores[best], kind="stable")]
        return [(ids[i], float(scores[i])) for i in best]

    async def _vectors(self, repos: list[str] | None) -> list[_RepoVectors] | None:
        """The current vectors of `repos` (all repos when None); None when they would not
        fit the cache."""
        if repos is None:
            size = await self.db.fetch_one(Q["estimated_rows"])
            if size is None or size["rows"] > ALL_REPOS_MAX_ROWS:
                return None
            rows = await self.db.fetch_all(Q["all_scope_versions"])
        else:
            rows = await self.db.fetch_all(Q["scope_versions"], {"repos": repos})
        versions = {r["repo"]: int(r["version"]) for r in rows}
        parts: list[_RepoVectors] = []
        async with self._lock:
            for repo, version in versions.items():
                cached = self._cache.get(repo)
                if cached is None or cached.version != version:
                    cached = await self._load(repo, version)
                    self._cache[repo] = cached
                self._cache.move_to_end(repo)
                parts.append(cached)
            total = sum(len(part.ids) for part in parts)
            self._evict(keep=set(versions))
        return parts if total <= self.max_rows else None  # evicted at the next search

    async def _load(self, repo: str, version: int) -> _RepoVectors:
        # The version was read first: a change after it raises the version again, so the
        # next search reads again; vectors never outlive their version.
        async with self.db.connection() as conn, conn.cursor(binary=True) as cur:
            cur.adapters.register_loader(REAL_ARRAY_OID, _RawArray)
            await cur.execute(Q["repo_vectors"], {"repo": repo, "embedder": self.embedder.name})
            rows = await cur.fetchall()
        return _RepoVectors(version, [r["id"] for r in rows], self._matrix([r["embedding"] for r in rows]))

    def _matrix(self, raw: list[bytes]) -> numpy.ndarray:
        dims = self.embedder.dimensions
        good = [b for b in raw if len(b) == _HEADER_BYTES + 8 * dims]
        if len(good) != len(raw):  # a vector of another length: stored by hand, skip it
            log.warning("learnings.vectors_skipped count=%d", len(raw) - len(good))
        if not good:
            return numpy.zeros((0, dims), dtype=numpy.float32)
        elements = numpy.frombuffer(b"".join(b[_HEADER_BYTES:] for b in good), _ELEMENT)
        return elements["value"].astype(numpy.float32).reshape(len(good), dims)

    def _evict(self, *, keep: set[str]) -> None:
        rows = sum(len(v.ids) for v in self._cache.values())
        while rows > self.max_rows and len(self._cache) > 1:
            repo = next(iter(self._cache))
            if repo in keep:
                break
            rows -= len(self._cache.pop(repo).ids)

    async def _rank_among(self, query: numpy.ndarray, ids: list[UUID], candidates: int) -> Ranked:
        if not ids:
            return []
        async with self.db.connection() as conn, conn.cursor(binary=True) as cur:
            cur.adapters.register_loader(REAL_ARRAY_OID, _RawArray)
            await cur.execute(Q["vectors_of"], {"ids": ids, "embedder": self.embedder.name})
            rows = await cur.fetchall()
        matrix = self._matrix([r["embedding"] for r in rows])
        if len(matrix) != len(rows):
            return []
        scores = matrix @ query
        order = numpy.argsort(-scores, kind="stable")[:candidates]
        return [(rows[i]["id"], float(scores[i])) for i in order]

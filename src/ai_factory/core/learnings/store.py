"""The learnings store: save what workers learned, find it again for the next task.

* Saving normalizes nothing but surrounding space; the database keeps one row per
  (repo, normalized text) and counts repeated saves (migration 002). Repo ``*`` (or
  none) is a global learning, offered to every repository.
* Searching for repo R looks at R's learnings and the global ones. With a query, two
  rankings are fused (see `ranking`): full-text over an OR of the query's words (Okapi
  BM25 within a scope, ts_rank over all repos; see learnings.sql) and, where the server
  has pgvector, cosine similarity of embeddings through a partial HNSW index per
  embedder. Without pgvector, full-text alone. Each learning a
  search returns has its use_count raised; a listing without a query counts nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries, split_queries
from ai_factory.core.errors import InvalidInputError, NotFoundError
from ai_factory.core.learnings.embedder import Embedder, embedder_from_name
from ai_factory.core.learnings.models import LearningRecord, SavedLearning, SearchMode
from ai_factory.core.learnings.ranking import reciprocal_rank_fusion
from ai_factory.core.settings import Settings

log = logging.getLogger(__name__)

Q = load_queries("learnings")

GLOBAL_REPO = "*"
MAX_CONTENT_CHARS = 4096
# A worker searches with its whole spec; the first few thousand characters (title,
# summary, first tasks) carry the topic, and a bounded query keeps ranking cheap.
MAX_QUERY_CHARS = 4000
MIN_CANDIDATES = 50
MAX_CANDIDATES = 400
HNSW_MAX_DIMENSIONS = 2000


def scope_repos(repo: str | None) -> list[str] | None:
    """The repo values a search for `repo` looks at: its own and the global ones."""
    if repo is None:
        return None
    repo = repo.strip()
    if not repo or repo == GLOBAL_REPO:
        return [GLOBAL_REPO]
    return [repo, GLOBAL_REPO]


def vector_literal(vector: Sequence[float]) -> str:
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


async def _nothing() -> list[tuple[UUID, float]]:
    return []


class LearningStore:
    def __init__(self, *, db: Database, embedder: Embedder | None = None) -> None:
        self.db = db
        self.embedder = embedder or embedder_from_name(None)
        dims, name = self.embedder.dimensions, self.embedder.name
        params = {
            "dims": sql.Literal(dims),
            "embedder": sql.Literal(name),
            "index": sql.Identifier(index_name(name)),
        }
        templates = vector_templates()
        self._rank_vector = {
            scoped: sql.SQL(templates[query]).format(**params).as_string()
            for scoped, query in ((False, "rank_vector"), (True, "rank_vector_in"))
        }
        self._create_index = sql.SQL(templates["create_vector_index"]).format(**params).as_string()
        self._prepared = False
        self._prepare_lock = asyncio.Lock()
        self._iterative_scan = False

    @classmethod
    def from_settings(cls, settings: Settings, *, db: Database) -> LearningStore:
        """The store with the embedder FACTORY_EMBEDDER names (default: auto)."""
        embedder = embedder_from_name(settings.factory_embedder)
        log.info("learnings.embedder name=%s", embedder.name)
        return cls(db=db, embedder=embedder)

    # --- set-up ---

    async def prepare(self) -> None:
        """Once per store: where pgvector exists, make sure this embedder's index does."""
        if self._prepared:
            return
        async with self._prepare_lock:
            if self._prepared:
                return
            if self.db.has_vector:
                row = await self.db.fetch_one(Q["vector_version"])
                numbers = re.findall(r"\d+", row["version"]) if row else []
                self._iterative_scan = tuple(int(n) for n in numbers[:2]) >= (0, 8)
                await self._create_vector_index()
            self._prepared = True

    async def _create_vector_index(self) -> None:
        if self.embedder.dimensions > HNSW_MAX_DIMENSIONS:
            log.warning(
                "learnings.vector_index_skipped embedder=%s dims=%d (HNSW indexes at most %d)",
                self.embedder.name, self.embedder.dimensions, HNSW_MAX_DIMENSIONS,
            )
            return
        try:
            async with self.db.transaction() as conn:
                # Two processes starting together would both try to create it.
                await conn.execute(Q["lock_index_creation"])
                await conn.execute(self._create_index)
        except psycopg.Error as exc:
            # Search still works, by an exact scan; say why it may be slow.
            log.warning(
                "learnings.vector_index_failed embedder=%s error=%s", self.embedder.name, exc
            )

    # --- saving ---

    async def save(
        self,
        repo: str | None,
        content: str,
        *,
        worker_id: UUID | None = None,
        work_item_id: UUID | None = None,
    ) -> SavedLearning:
        """Store a learning, or count one more save of the same text in the same scope."""
        text = self._checked(content)
        [vector] = await self._embed([text])
        return await self._upsert(repo, text, vector, worker_id, work_item_id)

    async def save_many(
        self, repo: str, contents: list[str], *, worker_id: UUID, work_item_id: UUID
    ) -> None:
        """Store a worker's new learnings; blank or oversized ones are skipped, not fatal."""
        texts: list[str] = []
        for content in contents:
            try:
                texts.append(self._checked(content))
            except InvalidInputError as exc:
                log.warning("learnings.skipped worker=%s reason=%s", worker_id, exc)
        vectors = await self._embed(texts)
        for text, vector in zip(texts, vectors, strict=True):
            await self._upsert(repo, text, vector, worker_id, work_item_id)

    def _checked(self, content: str) -> str:
        text = content.strip()
        if not text:
            raise InvalidInputError("a learning cannot be empty")
        if len(text) > MAX_CONTENT_CHARS:
            raise InvalidInputError(f"a learning is at most {MAX_CONTENT_CHARS} characters")
        return text

    async def _upsert(
        self,
        repo: str | None,
        text: str,
        vector: list[float] | None,
        worker_id: UUID | None,
        work_item_id: UUID | None,
    ) -> SavedLearning:
        await self.prepare()
        row = await self.db.fetch_one(
            Q["upsert"],
            {
                "repo": (repo or "").strip() or GLOBAL_REPO,
                "content": text,
                "worker_id": worker_id,
                "work_item_id": work_item_id,
                "embedder": self.embedder.name if vector is not None else None,
                "embedding": vector,
            },
        )
        assert row is not None
        saved = SavedLearning.model_validate({**row, "created": row["inserted"]})
        log.info(
            "learnings.%s id=%s repo=%s", "saved" if saved.created else "saved_again",
            saved.id, saved.repo,
        )
        return saved

    async def _embed(self, texts: list[str]) -> list[list[float] | None]:
        """Vectors for `texts`; None where a text has nothing to embed."""
        if not texts:
            return []
        vectors = await asyncio.to_thread(self.embedder.embed, [t[:MAX_QUERY_CHARS] for t in texts])
        return [v if any(v) else None for v in vectors]

    # --- searching ---

    async def search(
        self,
        *,
        repo: str | None = None,
        search: str | None = None,
        limit: int = 50,
        count_use: bool = True,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[LearningRecord]:
        """Learnings of `repo` (and global ones; all when None), best match first for a
        query, newest first without one."""
        repos = scope_repos(repo)
        query = (search or "").strip()[:MAX_QUERY_CHARS]
        if not query:
            rows = await self.db.fetch_all(
                Q["list_recent" if repos is None else "list_recent_in"],
                {"repos": repos, "limit": limit},
            )
            return [LearningRecord.model_validate(r) for r in rows]
        ranked = (await self.rank(query, repos=repos, limit=limit, mode=mode))[:limit]
        if not ranked:
            return []
        scores = dict(ranked)
        position = {learning_id: i for i, (learning_id, _) in enumerate(ranked)}
        fetch = Q["fetch_counting_use"] if count_use else Q["fetch"]
        rows = await self.db.fetch_all(fetch, {"ids": list(scores)})
        records = [LearningRecord.model_validate({**r, "score": scores[r["id"]]}) for r in rows]
        # The ranking's order, not a sort by score: equal scores are common (two learnings
        # sharing the same one query word) and the ranking has already broken those ties.
        # A learning deleted between ranking and fetching simply drops out.
        records.sort(key=lambda r: position[r.id])
        return records

    async def rank(
        self, query: str, *, repos: list[str] | None, limit: int, mode: SearchMode
    ) -> list[tuple[UUID, float]]:
        """(id, score) best first, up to the candidate depth for `limit`."""
        await self.prepare()
        candidates = min(max(2 * limit, MIN_CANDIDATES), MAX_CANDIDATES)
        use_text = mode is not SearchMode.VECTOR
        use_vector = mode is not SearchMode.TEXT and self.db.has_vector
        # The two rankings run side by side, on two pooled connections.
        by_text, by_vector = await asyncio.gather(
            self._rank_by_text(query, repos, candidates) if use_text else _nothing(),
            self._rank_by_vector(query, repos, candidates) if use_vector else _nothing(),
        )
        if not use_vector:
            return by_text
        if not use_text:
            return by_vector
        return reciprocal_rank_fusion([[i for i, _ in by_text], [i for i, _ in by_vector]])

    async def _rank_by_text(
        self, query: str, repos: list[str] | None, candidates: int
    ) -> list[tuple[UUID, float]]:
        rows = await self.db.fetch_all(
            Q["rank_text" if repos is None else "rank_text_in"],
            {"query": query, "repos": repos, "candidates": candidates},
        )
        return [(r["id"], float(r["score"])) for r in rows]

    async def _rank_by_vector(
        self, query: str, repos: list[str] | None, candidates: int
    ) -> list[tuple[UUID, float]]:
        [vector] = await self._embed([query])
        if vector is None:
            return []
        params: dict[str, Any] = {
            "embedding": vector_literal(vector), "repos": repos, "candidates": candidates,
        }
        async with self.db.transaction() as conn:
            await conn.execute(Q["hnsw_ef_search"], {"ef_search": str(max(candidates, 40))})
            if self._iterative_scan:
                await conn.execute(Q["hnsw_iterative_scan"])
            cur = await conn.execute(self._rank_vector[repos is not None], params)
            rows = await cur.fetchall()
        # relaxed_order may return neighbours slightly out of order.
        ranked = [(r["id"], float(r["score"])) for r in rows]
        ranked.sort(key=lambda item: item[1], reverse=True)
        return ranked

    # --- maintenance ---

    async def delete(self, learning_id: UUID) -> None:
        if await self.db.fetch_one(Q["delete"], {"id": learning_id}) is None:
            raise NotFoundError(f"learning {learning_id} not found")

    async def reembed(self, *, batch_size: int = 256) -> int:
        """Give every learning a vector from the current embedder (after a change of
        FACTORY_EMBEDDER); returns how many were embedded again."""
        await self.prepare()
        after = UUID(int=0)
        done = 0
        while True:
            rows = await self.db.fetch_all(
                Q["stale_embeddings"],
                {"embedder": self.embedder.name, "after": after, "batch": batch_size},
            )
            if not rows:
                break
            vectors = await self._embed([r["content"] for r in rows])
            params = [
                {
                    "id": r["id"],
                    "embedder": self.embedder.name if v is not None else None,
                    "embedding": v,
                }
                for r, v in zip(rows, vectors, strict=True)
            ]
            async with self.db.transaction() as conn, conn.cursor() as cur:
                await cur.executemany(Q["set_embedding"], params)
            after = rows[-1]["id"]
            done += len(rows)
        log.info("learnings.reembedded count=%d embedder=%s", done, self.embedder.name)
        return done

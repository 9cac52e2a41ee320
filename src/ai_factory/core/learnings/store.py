"""The learnings store: save what workers learned, find it again for the next task.

* Saving normalizes nothing but surrounding space; the database keeps one row per
  (repo, normalized text) and counts repeated saves (migration 002). A text that says
  what a learning of the same repo already says in other words (cosine similarity of
  their vectors at least `merge_similarity`) is merged into it the same way: its
  save_count goes up and no second row is stored. Repo ``*`` (or none) is a global
  learning, offered to every repository.
* Searching for repo R looks at R's current learnings and the global ones (obsolete ones
  never). With a query, two rankings are fused (see `ranking`): full-text over an OR of
  the query's words (Okapi BM25 within a scope, ts_rank over all repos; see
  learnings.sql) and cosine similarity of embeddings, by pgvector's HNSW index where the
  server has it and exactly in this process where it does not (see `vectors`): the same
  ranking on every PostgreSQL. A search may prefer learnings given to items that
  completed. Each learning a search returns has its use_count raised; a listing without
  a query counts nothing.
* A worker's context (`context`) is its scope ranked against its spec, within a token
  budget (see `context`); each learning given is recorded with the item it went to.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import ConflictError, InvalidInputError, NotFoundError
from ai_factory.core.learnings.context import learning_tokens, within_budget
from ai_factory.core.learnings.embedder import Embedder, embedder_from_name
from ai_factory.core.learnings.models import (
    LearningContext,
    LearningRecord,
    SavedLearning,
    SearchMode,
)
from ai_factory.core.learnings.ranking import boost_completed, reciprocal_rank_fusion
from ai_factory.core.learnings.vectors import ranker_for
from ai_factory.core.models import UpdateLearningInput
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
CONTEXT_CANDIDATES = 200


def scope_repos(repo: str | None) -> list[str] | None:
    """The repo values a search for `repo` looks at: its own and the global ones."""
    if repo is None:
        return None
    repo = repo.strip()
    if not repo or repo == GLOBAL_REPO:
        return [GLOBAL_REPO]
    return [repo, GLOBAL_REPO]


def merge_similarity(embedder_name: str) -> float:
    """The cosine similarity from which two texts of one repo count as one learning.

    Chosen on texts written for the purpose, beside the tuning set's learnings: with
    WordLlama, restatements of a learning scored 0.70-0.93 against it and other advice on
    the same subject at most 0.66, while no two distinct learnings of a scope passed 0.43;
    the hashing embedder scores lower all round (0.63-0.87, 0.44, 0.32). The thresholds
    err towards keeping two rows: a missed merge costs a few tokens, a wrong one loses a
    learning. Other models get a cautious 0.85 (LEARNINGS_MERGE_SIMILARITY overrides)."""
    if embedder_name.startswith("wordllama-"):
        return 0.75
    if embedder_name.startswith("hashing-"):
        return 0.6
    return 0.85


async def _nothing() -> list[tuple[UUID, float]]:
    return []


class LearningStore:
    def __init__(
        self,
        *,
        db: Database,
        embedder: Embedder | None = None,
        merge_at: float | None = None,
    ) -> None:
        self.db = db
        self.embedder = embedder or embedder_from_name(None)
        self.merge_at = merge_similarity(self.embedder.name) if merge_at is None else merge_at
        self.vectors = ranker_for(db, self.embedder)
        self._prepared = False
        self._prepare_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, db: Database) -> LearningStore:
        """The store with the embedder FACTORY_EMBEDDER names (default: auto)."""
        embedder = embedder_from_name(settings.factory_embedder)
        store = cls(db=db, embedder=embedder, merge_at=settings.learnings_merge_similarity)
        log.info(
            "learnings.search embedder=%s vectors=%s merge_at=%.2f",
            embedder.name, store.vector_search, store.merge_at,
        )
        return store

    @property
    def vector_search(self) -> str:
        """How vectors are ranked here, in words (start-up and `factory doctor` say it)."""
        return self.vectors.description

    # --- set-up ---

    async def prepare(self) -> None:
        """Once per store: where pgvector exists, make sure this embedder's index does."""
        if self._prepared:
            return
        async with self._prepare_lock:
            if not self._prepared:
                await self.vectors.prepare()
                self._prepared = True

    # --- saving ---

    async def save(
        self,
        repo: str | None,
        content: str,
        *,
        worker_id: UUID | None = None,
        work_item_id: UUID | None = None,
    ) -> SavedLearning:
        """Store a learning, or count one more save of it (same text, or same meaning)."""
        text = self._checked(content)
        [vector] = await self._embed([text])
        return await self._save(repo, text, vector, worker_id, work_item_id)

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
            await self._save(repo, text, vector, worker_id, work_item_id)

    def _checked(self, content: str) -> str:
        text = content.strip()
        if not text:
            raise InvalidInputError("a learning cannot be empty")
        if len(text) > MAX_CONTENT_CHARS:
            raise InvalidInputError(f"a learning is at most {MAX_CONTENT_CHARS} characters")
        return text

    async def _save(
        self,
        repo: str | None,
        text: str,
        vector: list[float] | None,
        worker_id: UUID | None,
        work_item_id: UUID | None,
    ) -> SavedLearning:
        await self.prepare()
        repo = (repo or "").strip() or GLOBAL_REPO
        if vector is not None and self.merge_at < 1:
            nearest = await self.vectors.rank(vector, repos=[repo], candidates=1)
            if nearest and nearest[0][1] >= self.merge_at:
                row = await self.db.fetch_one(Q["merge_into"], {"id": nearest[0][0]})
                if row is not None:
                    return await self._saved(row["id"], created=False, merged=True)
        row = await self.db.fetch_one(
            Q["upsert"],
            {
                "repo": repo,
                "content": text,
                "worker_id": worker_id,
                "work_item_id": work_item_id,
                "embedder": self.embedder.name if vector is not None else None,
                "embedding": vector,
            },
        )
        assert row is not None
        return await self._saved(row["id"], created=row["inserted"], merged=False)

    async def _saved(self, learning_id: UUID, *, created: bool, merged: bool) -> SavedLearning:
        record = await self.get(learning_id)
        saved = SavedLearning.model_validate({**record.model_dump(), "created": created, "merged": merged})
        event = "saved" if created else "merged" if merged else "saved_again"
        log.info("learnings.%s id=%s repo=%s", event, saved.id, saved.repo)
        return saved

    async def _embed(self, texts: list[str]) -> list[list[float] | None]:
        """Vectors for `texts`; None where a text has nothing to embed."""
        if not texts:
            return []
        vectors = await asyncio.to_thread(self.embedder.embed, [t[:MAX_QUERY_CHARS] for t in texts])
        return [v if any(v) else None for v in vectors]

    # --- reading ---

    async def get(self, learning_id: UUID) -> LearningRecord:
        rows = await self.db.fetch_all(Q["fetch"], {"ids": [learning_id]})
        if not rows:
            raise NotFoundError(f"learning {learning_id} not found")
        return LearningRecord.model_validate(rows[0])

    async def search(
        self,
        *,
        repo: str | None = None,
        search: str | None = None,
        limit: int = 50,
        count_use: bool = True,
        mode: SearchMode = SearchMode.HYBRID,
        prefer_completed: bool = False,
        include_obsolete: bool = False,
    ) -> list[LearningRecord]:
        """Learnings of `repo` (and global ones; all when None), best match first for a
        query, newest first without one (obsolete ones too when asked, never in a search)."""
        repos = scope_repos(repo)
        query = (search or "").strip()[:MAX_QUERY_CHARS]
        if not query:
            rows = await self.db.fetch_all(
                Q["list_recent" if repos is None else "list_recent_in"],
                {"repos": repos, "limit": limit, "obsolete": include_obsolete},
            )
            return [LearningRecord.model_validate(r) for r in rows]
        ranked = await self.rank(
            query, repos=repos, limit=limit, mode=mode, prefer_completed=prefer_completed
        )
        ranked = ranked[:limit]
        if count_use and ranked:
            await self.db.execute(Q["count_use"], {"ids": [i for i, _ in ranked]})
        return await self._fetch_in_order(ranked)

    async def _fetch_in_order(self, ranked: list[tuple[UUID, float]]) -> list[LearningRecord]:
        if not ranked:
            return []
        scores = dict(ranked)
        position = {learning_id: i for i, (learning_id, _) in enumerate(ranked)}
        rows = await self.db.fetch_all(Q["fetch"], {"ids": list(scores)})
        records = [LearningRecord.model_validate({**r, "score": scores[r["id"]]}) for r in rows]
        # The ranking's order, not a sort by score: equal scores are common (two learnings
        # sharing the same one query word) and the ranking has already broken those ties.
        # A learning deleted between ranking and fetching simply drops out.
        records.sort(key=lambda r: position[r.id])
        return records

    async def rank(
        self,
        query: str,
        *,
        repos: list[str] | None,
        limit: int,
        mode: SearchMode,
        prefer_completed: bool = False,
    ) -> list[tuple[UUID, float]]:
        """(id, score) best first, up to the candidate depth for `limit`."""
        await self.prepare()
        candidates = min(max(2 * limit, MIN_CANDIDATES), MAX_CANDIDATES)
        use_text = mode is not SearchMode.VECTOR
        use_vector = mode is not SearchMode.TEXT
        # The two rankings run side by side, on two pooled connections.
        by_text, by_vector = await asyncio.gather(
            self._rank_by_text(query, repos, candidates) if use_text else _nothing(),
            self._rank_by_vector(query, repos, candidates) if use_vector else _nothing(),
        )
        if (
            use_vector and use_text and repos is None and not by_vector
            and (vector := (await self._embed([query]))[0]) is not None
        ):
            # Too many learnings over all repos to scan without pgvector: the vectors
            # rank the full-text candidates instead.
            by_vector = await self.vectors.rank(
                vector, repos=None, candidates=candidates, among=[i for i, _ in by_text]
            )
        if not use_vector:
            ranked = by_text
        elif not use_text:
            ranked = by_vector
        else:
            ranked = reciprocal_rank_fusion([[i for i, _ in by_text], [i for i, _ in by_vector]])
        if prefer_completed and ranked:
            rows = await self.db.fetch_all(Q["completed_counts"], {"ids": [i for i, _ in ranked]})
            ranked = boost_completed(ranked, {r["id"]: int(r["completed"]) for r in rows})
        return ranked

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
        return await self.vectors.rank(vector, repos=repos, candidates=candidates)

    # --- a worker's context ---

    async def context(
        self,
        *,
        repo: str,
        search: str,
        budget_tokens: int,
        work_item_id: UUID | None = None,
    ) -> LearningContext:
        """The learnings a worker on `repo` gets for its spec (`search`): every current
        one when they fit `budget_tokens`, else the best matches that do (learnings given
        to items that completed first among equals). With `work_item_id`, each one
        given is recorded as given to that item."""
        repos = scope_repos(repo) or [GLOBAL_REPO]
        sizes = await self.db.fetch_all(Q["scope_sizes"], {"repos": repos})
        chars = {r["id"]: int(r["chars"]) for r in sizes}
        scope_tokens = sum(learning_tokens(c) for c in chars.values())
        query = search.strip()[:MAX_QUERY_CHARS]
        ranked: list[tuple[UUID, float]] = []
        if query and chars:
            ranked = await self.rank(
                query, repos=repos, limit=CONTEXT_CANDIDATES, mode=SearchMode.HYBRID,
                prefer_completed=True,
            )
        chosen = within_budget([i for i, _ in ranked], list(chars), chars, budget_tokens)
        if chosen and work_item_id is not None:
            await self.db.execute(Q["record_delivery"], {"ids": chosen, "item": work_item_id})
        scores = dict(ranked)
        records = await self._fetch_in_order([(i, scores.get(i, 0.0)) for i in chosen])
        return LearningContext(
            learnings=records,
            tokens=sum(learning_tokens(chars[r.id]) for r in records),
            budget_tokens=budget_tokens,
            scope_tokens=scope_tokens,
            scope_count=len(chars),
        )

    # --- maintenance ---

    async def edit(self, learning_id: UUID, change: UpdateLearningInput) -> LearningRecord:
        """New text (embedded again) and/or the obsolete mark; `ConflictError` when the new
        text is one its repo already has."""
        if change.content is not None:
            text = self._checked(change.content)
            [vector] = await self._embed([text])
            try:
                row = await self.db.fetch_one(
                    Q["edit"],
                    {
                        "id": learning_id, "content": text,
                        "embedder": self.embedder.name if vector is not None else None,
                        "embedding": vector,
                    },
                )
            except psycopg.errors.UniqueViolation as exc:
                raise ConflictError("that repository already has this learning") from exc
            if row is None:
                raise NotFoundError(f"learning {learning_id} not found")
        if change.obsolete is not None:
            row = await self.db.fetch_one(
                Q["mark_obsolete"], {"id": learning_id, "obsolete": change.obsolete}
            )
            if row is None:
                raise NotFoundError(f"learning {learning_id} not found")
        record = await self.get(learning_id)
        log.info("learnings.edited id=%s obsolete=%s", record.id, record.obsolete)
        return record

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

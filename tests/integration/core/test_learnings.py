"""The learnings store on both servers: dedupe, scope, use counts, search paths, sources.

The machine's server has no pgvector, so its search is full-text alone; the embedded
server ranks by full-text and vectors together. The paraphrase tests say what each
finds: a paraphrase sharing no word with a learning is found through vectors only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.db.migrations import apply_migrations, available_migrations
from ai_factory.core.errors import InvalidInputError, NotFoundError
from ai_factory.core.learnings.embedder import Embedder
from ai_factory.core.learnings.hashing import HashingEmbedder
from ai_factory.core.learnings.models import LearningScope, SearchMode
from ai_factory.core.learnings.store import LearningStore, index_name
from ai_factory.core.models import CreateWorkItemInput
from tests.support.ledger import queue_on
from tests.support.pg import PgServer

LEARNINGS = [
    "Run the linter before committing; CI rejects style errors.",
    "Database migrations are generated with make migration, never written by hand.",
    "Prices are stored as integer cents, never as floats.",
    "Flaky tests must be quarantined, not retried.",
    "Never commit a regenerated lockfile unless a dependency changed.",
    "Timestamps are stored in UTC and shown in the customer timezone.",
]


@pytest.fixture
async def db(any_database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(any_database_url, max_size=4)
    yield database
    await database.close()


def store_for(db: Database, embedder: Embedder | None = None) -> LearningStore:
    return LearningStore(db=db, embedder=embedder or HashingEmbedder())


async def fill(store: LearningStore, repo: str = "acme/shop") -> None:
    for text in LEARNINGS:
        await store.save(repo, text)


async def contents(store: LearningStore, **search) -> list[str]:
    return [r.content for r in await store.search(**search)]


async def test_saving_the_same_learning_twice_keeps_one_row_and_counts(db: Database) -> None:
    store = store_for(db)
    first = await store.save("acme/shop", "Run make lint before committing.")
    again = await store.save("acme/shop", "  - run MAKE   lint before committing ")
    assert first.created and not again.created
    assert again.id == first.id and again.save_count == 2
    assert again.content == "Run make lint before committing."
    elsewhere = await store.save("acme/other", "Run make lint before committing.")
    assert elsewhere.created and elsewhere.id != first.id
    assert [r.save_count for r in await store.search(repo="acme/shop")] == [2]


async def test_bad_content_is_refused(db: Database) -> None:
    store = store_for(db)
    with pytest.raises(InvalidInputError):
        await store.save("acme/shop", "   ")
    with pytest.raises(InvalidInputError):
        await store.save("acme/shop", "x" * 4097)


async def test_a_repo_sees_its_own_and_global_learnings(db: Database) -> None:
    store = store_for(db)
    await store.save("acme/shop", "Shop: prices are integer cents.")
    await store.save("acme/infra", "Infra: pin provider versions.")
    glob = await store.save(None, "Everywhere: rebase before opening a PR.")
    assert glob.repo == "*" and glob.scope is LearningScope.GLOBAL

    assert sorted(await contents(store, repo="acme/shop")) == [
        "Everywhere: rebase before opening a PR.", "Shop: prices are integer cents."
    ]
    found = await contents(store, repo="acme/shop", search="prices rebase provider versions")
    assert sorted(found) == ["Everywhere: rebase before opening a PR.", "Shop: prices are integer cents."]
    assert await contents(store, repo="never/seen") == ["Everywhere: rebase before opening a PR."]
    assert len(await contents(store)) == 3
    assert len(await contents(store, repo="acme/infra", limit=1)) == 1


async def test_a_search_counts_a_use_and_a_listing_does_not(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    [hit] = await store.search(repo="acme/shop", search="database migrations", limit=1)
    assert hit.content.startswith("Database migrations") and hit.use_count == 1
    await store.search(repo="acme/shop", search="database migrations", limit=1)
    await store.search(repo="acme/shop")
    await store.search(repo="acme/shop", search="database migrations", limit=1, count_use=False)
    counts = {r.content: r.use_count for r in await store.search(repo="acme/shop")}
    assert counts[hit.content] == 2
    assert sum(counts.values()) == 2


async def test_full_text_finds_other_forms_of_the_same_words_on_both_servers(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    [hit] = await store.search(repo="acme/shop", search="migration generating by hand", limit=1)
    assert hit.content.startswith("Database migrations")


async def test_a_spec_s_rare_word_outranks_its_common_ones_on_both_servers(db: Database) -> None:
    # Three learnings share the spec's common words "new" and "test"; one shares its
    # rare word "Kafka". BM25 weighs each word by its rarity among the learnings searched.
    store = store_for(db)
    for text in [
        "New tests go next to the code they test.",
        "Tests run in parallel; a new test must not share state.",
        "Snapshot tests are updated with a new make target.",
        "Kafka offsets are committed only after the batch is written.",
    ]:
        await store.save("acme/ingest", text)
    found = await contents(
        store, repo="acme/ingest", search="Write tests for the new Kafka consumer", limit=2,
        mode=SearchMode.TEXT,
    )
    assert found[0].startswith("Kafka offsets")


async def test_a_paraphrase_without_shared_words_needs_vectors(db: Database) -> None:
    # "lock file" shares character n-grams with "lockfile" but no full-text lexeme.
    store = store_for(db)
    await fill(store)
    found = await contents(store, repo="acme/shop", search="do not check in the lock file", limit=1)
    if db.has_vector:
        assert found == ["Never commit a regenerated lockfile unless a dependency changed."]
    else:
        assert found == []


async def test_a_sentence_model_finds_synonyms_where_full_text_finds_nothing(db: Database) -> None:
    pytest.importorskip("wordllama")
    from ai_factory.core.learnings.wordllama import WordLlamaEmbedder

    store = store_for(db, WordLlamaEmbedder())
    await fill(store)
    money = await contents(store, repo="acme/shop", search="monetary amounts and rounding", limit=1)
    time = await contents(store, repo="acme/shop", search="dates displayed in the local time zone", limit=1)
    if db.has_vector:
        assert money == ["Prices are stored as integer cents, never as floats."]
        assert time == ["Timestamps are stored in UTC and shown in the customer timezone."]
    else:
        assert money == [] and time == []


async def test_vector_search_uses_the_embedders_hnsw_index(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    if not db.has_vector:
        assert await store.rank("lint", repos=None, limit=5, mode=SearchMode.VECTOR) == []
        return
    name = index_name(store.embedder.name)
    assert await db.fetch_one("SELECT 1 FROM pg_indexes WHERE indexname = %(n)s", {"n": name})
    vector = "[" + ",".join(["0.5"] * store.embedder.dimensions) + "]"
    async with db.transaction() as conn:
        await conn.execute("SET LOCAL enable_seqscan = off")
        cur = await conn.execute(
            "EXPLAIN " + store._rank_vector[True],
            {"embedding": vector, "repos": ["acme/shop", "*"], "candidates": 5},
        )
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
    assert name in plan


async def test_a_worker_s_learnings_keep_their_source(db: Database) -> None:
    store = store_for(db)
    item, _ = await queue_on(db).add(CreateWorkItemInput(repo="acme/shop", spec="- [ ] x"))
    worker = uuid.uuid4()
    await store.save_many(
        "acme/shop", ["Use uv, not pip.", "", "x" * 5000, "use uv, not pip"],
        worker_id=worker, work_item_id=item.id,
    )
    [saved] = await store.search(repo="acme/shop")
    assert saved.content == "Use uv, not pip."
    assert saved.source_worker_id == worker and saved.source_work_item_id == item.id
    assert saved.save_count == 2


async def test_delete(db: Database) -> None:
    store = store_for(db)
    saved = await store.save("acme/shop", "Temporary learning.")
    await store.delete(saved.id)
    assert await store.search(repo="acme/shop") == []
    with pytest.raises(NotFoundError):
        await store.delete(saved.id)


async def test_changing_the_embedder_and_reembedding(db: Database) -> None:
    await fill(store_for(db))
    other = store_for(db, HashingEmbedder(dimensions=256))
    assert await other.reembed(batch_size=4) == len(LEARNINGS)
    assert await other.reembed() == 0
    rows = await db.fetch_all("SELECT DISTINCT embedder, cardinality(embedding) AS n FROM learnings")
    assert rows == [{"embedder": "hashing-v1-256", "n": 256}]
    found = await contents(other, repo="acme/shop", search="do not check in the lock file", limit=1)
    assert found == (["Never commit a regenerated lockfile unless a dependency changed."] if db.has_vector else [])


async def test_migration_merges_duplicates_saved_before_it(pg: PgServer) -> None:
    url = pg.create_database(migrated=False)
    try:
        database = await Database.open(url, max_size=2)
        try:
            first = available_migrations()[0]
            async with database.connection() as conn:
                await conn.execute(first.sql.encode())
                await conn.execute(
                    "CREATE TABLE schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                await conn.execute("INSERT INTO schema_migrations VALUES (1, %s)", (first.name,))
                await conn.execute(
                    "INSERT INTO learnings (repo, content, use_count, created_at) VALUES"
                    " ('r', 'Use uv.', 2, now() - interval '2 days'),"
                    " ('r', 'use UV', 3, now() - interval '1 day'), ('s', 'Use uv.', 0, now())"
                )
            await apply_migrations(database)
            rows = await database.fetch_all(
                "SELECT repo, content, use_count, save_count FROM learnings ORDER BY repo"
            )
            assert rows == [
                {"repo": "r", "content": "Use uv.", "use_count": 5, "save_count": 2},
                {"repo": "s", "content": "Use uv.", "use_count": 0, "save_count": 1},
            ]
        finally:
            await database.close()
    finally:
        pg.drop_database(url)

"""The learnings store on both servers: dedupe, scope, use counts, search paths, sources.

The machine's server has no pgvector: the store ranks vectors exactly in the process
there, and through pgvector's HNSW index on the embedded server. The paraphrase tests say
that both find what only vectors can find: a paraphrase sharing no word with a learning.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.db.migrations import apply_migrations, available_migrations
from ai_factory.core.errors import ConflictError, InvalidInputError, NotFoundError
from ai_factory.core.learnings.embedder import Embedder
from ai_factory.core.learnings.hashing import HashingEmbedder
from ai_factory.core.learnings.models import LearningScope, SearchMode
from ai_factory.core.learnings.store import LearningStore
from ai_factory.core.learnings.vectors import index_name
from ai_factory.core.models import CreateWorkItemInput, UpdateLearningInput
from tests.support.ledger import queue_on
from tests.support.pg import PgServer

ITEM_REPO = "https://github.com/acme/shop"  # a work item's repo: a URL or an absolute path

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
    assert found == ["Never commit a regenerated lockfile unless a dependency changed."]
    assert store.vector_search.startswith("pgvector" if db.has_vector else "exact")


async def test_a_sentence_model_finds_synonyms_where_full_text_finds_nothing(db: Database) -> None:
    pytest.importorskip("wordllama")
    from ai_factory.core.learnings.wordllama import WordLlamaEmbedder

    store = store_for(db, WordLlamaEmbedder())
    await fill(store)
    money = await contents(store, repo="acme/shop", search="monetary amounts and rounding", limit=1)
    time = await contents(store, repo="acme/shop", search="dates displayed in the local time zone", limit=1)
    assert money == ["Prices are stored as integer cents, never as floats."]
    assert time == ["Timestamps are stored in UTC and shown in the customer timezone."]


async def test_vector_search_uses_the_embedders_hnsw_index(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    if not db.has_vector:
        pytest.skip("the machine's server has no pgvector (exact ranking: test_exact_ranking_follows_every_change_from_any_process)")
    name = index_name(store.embedder.name)
    assert await db.fetch_one("SELECT 1 FROM pg_indexes WHERE indexname = %(n)s", {"n": name})
    vector = "[" + ",".join(["0.5"] * store.embedder.dimensions) + "]"
    async with db.transaction() as conn:
        await conn.execute("SET LOCAL enable_seqscan = off")
        cur = await conn.execute(
            "EXPLAIN " + store.vectors.rank_sql[True],
            {"embedding": vector, "repos": ["acme/shop", "*"], "candidates": 5},
        )
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
    assert name in plan


async def test_a_worker_s_learnings_keep_their_source(db: Database) -> None:
    store = store_for(db)
    item, _ = await queue_on(db).add(CreateWorkItemInput(repo=ITEM_REPO, spec="- [ ] x"))
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
    assert found == ["Never commit a regenerated lockfile unless a dependency changed."]


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


async def test_a_learning_said_again_in_other_words_is_merged(db: Database) -> None:
    pytest.importorskip("wordllama")
    from ai_factory.core.learnings.wordllama import WordLlamaEmbedder

    store = store_for(db, WordLlamaEmbedder())
    first = await store.save("acme/web", "Never commit a regenerated pnpm-lock.yaml unless a dependency was added on purpose.")
    again = await store.save(
        "acme/web", "Do not commit a regenerated pnpm lockfile unless you added a dependency on purpose."
    )
    assert again.id == first.id and not again.created and again.merged and again.save_count == 2
    assert again.content == first.content
    other = await store.save("acme/web", "Use pnpm, not npm: the repository has only a pnpm lockfile.")
    assert other.created and not other.merged
    elsewhere = await store.save("acme/api", "Do not commit a regenerated pnpm lockfile unless you added a dependency on purpose.")
    assert elsewhere.created
    assert len(await store.search(repo="acme/web")) == 2


async def test_exact_ranking_follows_every_change_from_any_process(db: Database) -> None:
    # Two stores on one database stand for two orchestrators: what one writes, the
    # other's next search sees, whichever way its vectors are ranked.
    ours, theirs = store_for(db), store_for(db)
    await fill(ours)
    query = "do not check in the lock file"
    assert (await contents(ours, repo="acme/shop", search=query, limit=1))[0].startswith("Never commit")
    added = await theirs.save("acme/shop", "Check in the lock file only with the dependency change it records.")
    ranked = await ours.rank(query, repos=["acme/shop", "*"], limit=10, mode=SearchMode.VECTOR)
    assert added.id in [i for i, _ in ranked]
    await theirs.edit(added.id, UpdateLearningInput(obsolete=True))
    ranked = await ours.rank(query, repos=["acme/shop", "*"], limit=10, mode=SearchMode.VECTOR)
    assert added.id not in [i for i, _ in ranked]
    await theirs.delete(added.id)
    assert len(await ours.rank(query, repos=["acme/shop", "*"], limit=10, mode=SearchMode.VECTOR)) == len(LEARNINGS)


async def test_edit_and_mark_obsolete(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    [hit] = await store.search(repo="acme/shop", search="prices floats", limit=1)
    edited = await store.edit(hit.id, UpdateLearningInput(content="Prices are integer cents; money never goes through a float."))
    assert edited.content.startswith("Prices are integer cents") and edited.updated_at and not edited.obsolete
    [again] = await store.search(repo="acme/shop", search="money through a float", limit=1)
    assert again.id == hit.id

    obsolete = await store.edit(hit.id, UpdateLearningInput(obsolete=True))
    assert obsolete.obsolete
    assert hit.id not in [r.id for r in await store.search(repo="acme/shop", search="money float cents")]
    assert hit.id not in [r.id for r in await store.search(repo="acme/shop")]
    listed = await store.search(repo="acme/shop", include_obsolete=True)
    assert hit.id in [r.id for r in listed if r.obsolete]
    context = await store.context(repo="acme/shop", search="money", budget_tokens=10_000)
    assert hit.id not in [r.id for r in context.learnings]
    assert not (await store.edit(hit.id, UpdateLearningInput(obsolete=False))).obsolete

    with pytest.raises(ConflictError):
        await store.edit(hit.id, UpdateLearningInput(content=LEARNINGS[0]))
    with pytest.raises(NotFoundError):
        await store.edit(uuid.uuid4(), UpdateLearningInput(obsolete=True))


async def test_a_worker_s_context_is_its_scope_within_the_budget(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    await store.save(None, "Rebase on the base branch before opening a pull request.")
    await store.save("acme/other", "Not for the shop.")
    spec = "Add a database migration for the orders table"

    everything = await store.context(repo="acme/shop", search=spec, budget_tokens=1500)
    assert len(everything.learnings) == len(LEARNINGS) + 1 == everything.scope_count
    assert everything.learnings[0].content.startswith("Database migrations")
    assert everything.tokens == everything.scope_tokens <= 1500

    small = await store.context(repo="acme/shop", search=spec, budget_tokens=40)
    assert 0 < small.tokens <= 40 < small.scope_tokens
    assert small.learnings[0].content.startswith("Database migrations")
    assert len(small.learnings) < len(everything.learnings)
    assert (await store.context(repo="acme/shop", search=spec, budget_tokens=0)).learnings == []


async def test_given_learnings_remember_the_item_and_its_outcome(db: Database) -> None:
    store = store_for(db)
    await fill(store)
    item, _ = await queue_on(db).add(CreateWorkItemInput(repo=ITEM_REPO, spec="- [ ] x"))
    spec = "Write tests for the new lockfile check"
    given = await store.context(repo="acme/shop", search=spec, budget_tokens=30, work_item_id=item.id)
    assert given.learnings
    [record] = [r for r in await store.search(repo="acme/shop") if r.id == given.learnings[0].id]
    assert record.last_given_work_item_id == item.id and record.last_given_at is not None
    assert record.given_count == 1 and record.completed_count == 0 and record.use_count == 1
    assert record.last_given_status == "queued"

    # A learning given to an item that completed comes first among equals.
    twins = [
        await store.save("acme/twins", text)
        for text in ("Caching: warm the cache before a load test.", "Caching: clear the cache after a schema change.")
    ]
    plain = await store.rank("caching", repos=["acme/twins"], limit=2, mode=SearchMode.TEXT)
    first, second = (i for i, _ in plain)
    await store.edit(first, UpdateLearningInput(obsolete=True))  # so that only `second` is given
    await store.context(repo="acme/twins", search="caching", budget_tokens=10_000, work_item_id=item.id)
    await store.edit(first, UpdateLearningInput(obsolete=False))
    await db.execute("UPDATE work_items SET status = 'completed' WHERE id = %(id)s", {"id": item.id})
    preferred = await store.rank("caching", repos=["acme/twins"], limit=2, mode=SearchMode.TEXT, prefer_completed=True)
    assert [i for i, _ in preferred] == [second, first]
    assert {first, second} == {t.id for t in twins}
    record = await store.get(second)
    assert record.last_given_status == "completed" and record.completed_count == 1

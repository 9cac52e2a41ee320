"""The PostgreSQL connection pool every store module shares.

`Database` owns one psycopg async pool (autocommit, dict rows) and knows what the
server can do (`has_vector`). `transaction()` makes the queries of the calling task
inside it one transaction, so store methods compose atomically. Connection failures surface as `StoreError` (the API
answers 503) and values the database cannot hold as `InvalidInputError` (422),
without leaking driver types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ai_factory.core.errors import InvalidInputError, StoreError

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | None

# While the server is unreachable, a request waits this long for a connection before it
# is answered 503 (a new connection gets as long to open): fail fast, never hang 30 s.
CONNECTION_WAIT_S = 2.0
# One connection is tried before the pool opens: a server that is not there (a wrong
# DATABASE_URL) is one line within this time, not the pool's warnings and retries for 15 s.
PROBE_TIMEOUT_S = 3
POOL_LOGGER = "psycopg.pool"


def where(url: str) -> str:
    """host:port/dbname of a connection string, without its password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "(an unreadable URL)"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    return f"{host}{port}/{info.get('dbname') or info.get('user') or ''}"


def one_line(exc: BaseException) -> str:
    """A driver error's message on one line (libpq adds hints on lines of their own)."""
    return (
        " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        or type(exc).__name__
    )


async def probe(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Open and close one connection; `StoreError` in one line when the server does not answer."""
    try:
        async with asyncio.timeout(timeout_s + 1):
            conn = await psycopg.AsyncConnection.connect(
                url, connect_timeout=max(2, round(timeout_s))
            )
    except (psycopg.Error, TimeoutError, OSError) as exc:
        reason = one_line(exc) if not isinstance(exc, TimeoutError) else "no answer"
        raise StoreError(f"cannot connect to the database at {where(url)}: {reason}") from None
    await conn.close()


@contextlib.contextmanager
def _pool_quiet() -> Iterator[None]:
    """psycopg_pool warns (with a traceback) for every failed attempt while it opens; the
    probe has said what matters, and a failure to open is raised as one line anyway."""
    pool_log = logging.getLogger(POOL_LOGGER)
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pool_log.setLevel(level)


class Database:
    """A pool of connections to the factory's database."""

    def __init__(
        self, *, pool: AsyncConnectionPool, url: str, wait_s: float = CONNECTION_WAIT_S
    ) -> None:
        self.pool = pool
        self.url = url
        self.wait_s = wait_s
        self.last_failure_at: float | None = None  # time.monotonic() of the last lost connection
        self.has_vector = False
        self._ambient: ContextVar[psycopg.AsyncConnection[dict[str, Any]] | None] = ContextVar(
            f"factory_db_{id(self)}", default=None
        )

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, wait_s: float = CONNECTION_WAIT_S
    ) -> Database:
        await probe(url)
        pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, round(wait_s)),
            },
            timeout=wait_s,
            name="factory",
        )
        try:
            with _pool_quiet():
                await pool.open(wait=True, timeout=15)
        except psycopg.Error as exc:  # PoolTimeout included
            await pool.close()
            raise StoreError(
                f"cannot connect to the database at {where(url)}: {one_line(exc)}"
            ) from exc
        db = cls(pool=pool, url=url, wait_s=wait_s)
        await db.refresh_capabilities()
        return db

    async def refresh_capabilities(self) -> None:
        row = await self.fetch_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') AS v"
        )
        self.has_vector = bool(row and row["v"])

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A pooled connection, or the open `transaction()`'s when this task is inside one."""
        try:
            ambient = self._ambient.get()
            if ambient is not None:
                yield ambient
            else:
                async with self.pool.connection() as conn:
                    yield conn
        except psycopg.OperationalError as exc:
            self.last_failure_at = time.monotonic()
            raise StoreError(f"database unavailable: {exc}") from exc
        except psycopg.DataError as exc:
            # A value the database cannot hold (a NUL byte in text, a number out of range):
            # the caller's input, not a server fault.
            raise InvalidInputError(f"invalid value: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """One transaction; every query of this task inside the block joins it.

        So store methods written for one statement each (`fetch_one`, `execute`)
        compose atomically: ``async with db.transaction(): await a(); await b()``.
        Nested blocks are savepoints. Tasks started inside the block must not use
        the database (they would share its connection).
        """
        async with self.connection() as conn, conn.transaction():
            token = self._ambient.set(conn)
            try:
                yield conn
            finally:
                self._ambient.reset(token)

    @asynccontextmanager
    async def advisory_lock(
        self, key: int
    ) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """Hold PostgreSQL advisory lock `key` for the block, across every process on the
        database; yields the connection that holds it (a process that dies releases it)."""
        async with self.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%(key)s)", {"key": key})
            try:
                yield conn
            finally:
                with contextlib.suppress(psycopg.OperationalError):  # a dead session let go
                    await conn.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": key})

    async def fetch_one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def fetch_all(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def execute(self, sql: str, params: Params = None) -> int:
        """Run a statement; return the number of rows it touched."""
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount

"""Shared fixtures: real PostgreSQL databases (machine server and embedded), settings,
and a real orchestrator HTTP server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.services import Services
from tests.support.pg import SYSTEM_URL, PgServer, start_embedded
from tests.support.server import ServerThread
from tests.support.settings import make_settings


@pytest.fixture(scope="session")
def system_pg() -> Iterator[PgServer]:
    server = PgServer("system", SYSTEM_URL)
    yield server
    server.close()


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[PgServer]:
    # Not under pytest's basetemp: a concurrent pytest session prunes old basetemps,
    # which would delete a live data folder.
    base = Path(tempfile.mkdtemp(prefix="factory-embedded-"))
    embedded, admin_url = start_embedded(base)
    server = PgServer("embedded", admin_url)
    yield server
    server.close()
    embedded.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["system", "embedded"])
def pg(request: pytest.FixtureRequest) -> PgServer:
    """Run the test once on each PostgreSQL server."""
    return request.getfixturevalue(f"{request.param}_pg")


@pytest.fixture
def database_url(system_pg: PgServer) -> Iterator[str]:
    """A fresh, migrated database on the machine's server."""
    url = system_pg.create_database()
    yield url
    system_pg.drop_database(url)


@pytest.fixture
def any_database_url(pg: PgServer) -> Iterator[str]:
    """A fresh, migrated database, once per server."""
    url = pg.create_database()
    yield url
    pg.drop_database(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=20)
    yield database
    await database.close()


@pytest.fixture
async def services(settings: Settings, db: Database) -> Services:
    return Services.build(settings, db)


@pytest.fixture
def api(settings: Settings) -> Iterator[ServerThread]:
    """A real orchestrator HTTP server on an ephemeral port."""
    server = ServerThread(settings).start()
    yield server
    server.stop()

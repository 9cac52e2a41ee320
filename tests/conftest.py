"""Shared fixtures: real PostgreSQL databases (machine server and embedded), settings,
and a real orchestrator HTTP server; and, as root, temporary folders the agent's user
can pass through."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.services import Services
from tests.support.pg import SYSTEM_URL, PgServer, start_embedded
from tests.support.server import ServerThread
from tests.support.settings import make_settings

_OWN_BASETEMP = pytest.StashKey[str]()
_BASETEMP_PREFIX = "pytest-root-"
_KEEP_FAILED_S = 24 * 3600


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, a worker runs its agent as FACTORY_AGENT_USER, which must reach FACTORY_HOME,
    and tests keep theirs under tmp_path. pytest's folders live in /tmp/pytest-of-root, which
    every session (other people's concurrent ones too) resets to 0700; so a root session gets
    a basetemp of its own, and every folder pytest makes there is searchable, not listable
    (0711). A session that passes removes it; a failed one leaves it to look at for a day."""
    if os.geteuid() == 0 and config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix=_BASETEMP_PREFIX)
        config.stash[_OWN_BASETEMP] = config.option.basetemp
        stale = time.time() - _KEEP_FAILED_S
        for old in Path(config.option.basetemp).parent.glob(f"{_BASETEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < stale:
                    shutil.rmtree(old, ignore_errors=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        return
    factory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    make = factory.mktemp

    def mktemp(basename: str, numbered: bool = True) -> Path:
        path = make(basename, numbered)
        for folder in (factory.getbasetemp(), path):
            folder.chmod(0o711)
        return path

    factory.mktemp = mktemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own is not None and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)


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

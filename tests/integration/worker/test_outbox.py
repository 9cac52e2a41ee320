"""The worker's outbox against an orchestrator (or a proxy in front of it) that answers a
report with something that is not JSON: that report is logged and dropped, the reports
after it are still delivered, and `flush` says so only once they are."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest

from ai_factory.core.models import IterationReport
from ai_factory.worker.client import OrchestratorClient


class Orchestrator(ThreadingHTTPServer):
    """Answers the first iteration report with an HTML page, the others as the API does."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Orchestrator

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(body["iteration"])
        first = len(self.server.received) == 1
        answer = b"<html>502 from a proxy, said with 200</html>" if first else b'{"success": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def orchestrator() -> Iterator[Orchestrator]:
    server = Orchestrator()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_an_unreadable_answer_loses_that_report_only(orchestrator: Orchestrator) -> None:
    client = OrchestratorClient(base_url=orchestrator.url, worker_id=uuid4(), token="t")
    try:
        for number in (1, 2, 3):
            client.report_iteration(IterationReport(iteration=number))
        assert await client.flush(timeout_s=10)
    finally:
        await client.close()

    assert orchestrator.received == [1, 2, 3]

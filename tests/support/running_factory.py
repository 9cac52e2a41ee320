"""An orchestrator with its worker runtime, running fake workers, as the tests drive it.

`RunningFactory` is a real orchestrator served on an ephemeral port (`ServerThread`)
with the worker runtime running beside it; it spawns `tests/support/fake_worker.py`
as the worker command (`FAKE_WORKER`). `spec()` writes a spec that tells the fake
worker how to behave. The `start_factory` fixture (tests/integration/conftest.py)
builds these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ai_factory.orchestrator.services import Services
from tests.support.polling import wait_for
from tests.support.server import ServerThread

FAKE_WORKER = Path(__file__).resolve().parent / "fake_worker.py"


async def run_worker_runtime(services: Services) -> None:
    await services.runtime.run()


def spec(mode: str = "complete", seconds: float | None = None, title: str = "Task") -> str:
    lines = [f"# {title}", f"fake-mode: {mode}"]
    if seconds is not None:
        lines.append(f"fake-seconds: {seconds}")
    return "\n".join(lines) + "\n- [ ] do it\n"


class RunningFactory:
    def __init__(self, server: ServerThread, markers: Path, database_url: str) -> None:
        self.server = server
        self.markers_dir = markers
        self.database_url = database_url
        self.http = httpx.Client(base_url=server.url, timeout=30)

    @property
    def services(self) -> Services:
        assert self.server.services is not None
        return self.server.services

    def call(self, coro: Any) -> Any:
        return self.server.call(coro)

    def submit(self, text: str | None = None, **body: Any) -> dict[str, Any]:
        response = self.http.post(
            "/api/work", json={"repo": "https://git.example/srv/widgets.git", "spec": text or spec(), **body}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def item(self, item_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/work/{item_id}").json()

    def wait_status(self, item_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (i := self.item(item_id))["status"] in statuses and i,
            timeout=timeout,
            what=f"item {item_id} to be {'/'.join(statuses)} (is {self.item(item_id)['status']})",
        )

    def markers(self, item_id: str) -> list[dict[str, Any]]:
        path = self.markers_dir / f"{item_id}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def token_of(self, worker_id: str) -> str:
        """The token a fake worker was given (it keeps a copy under the markers folder)."""
        return (self.markers_dir / "tokens" / worker_id).read_text()

    def workers(self, *, all: bool = True) -> list[dict[str, Any]]:
        return self.http.get("/api/workers", params={"all": str(all).lower()}).json()

    def worker_row(self, worker_id: str) -> dict[str, Any]:
        with psycopg.connect(self.database_url) as conn:
            cur = conn.execute(
                "SELECT status, pid, container_id, exit_code FROM workers WHERE id = %s",
                (worker_id,),
            )
            status, pid, container_id, exit_code = cur.fetchone()
        return {"status": status, "pid": pid, "containerId": container_id, "exitCode": exit_code}

    def running_worker(self, item_id: str, *, timeout: float = 60) -> dict[str, Any]:
        """The registered worker of a running item, with its pid."""
        item = self.wait_status(item_id, "running", timeout=timeout)
        row = wait_for(
            lambda: (r := self.worker_row(item["workerId"]))["pid"] and r, what="the worker's pid"
        )
        return {"id": item["workerId"], **row}

    def events(self, item_id: str) -> list[dict[str, Any]]:
        return self.http.get(f"/api/work/{item_id}/events").json()

    def shutdown(self) -> int:
        runtime = self.services.runtime
        runtime.hurry()
        return self.call(runtime.shutdown())

    def close(self) -> None:
        try:
            self.shutdown()
        finally:
            self.http.close()
            self.server.stop()

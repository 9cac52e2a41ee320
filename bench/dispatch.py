"""Dispatch latency: an item submitted to an idle factory, until its worker has registered.

One orchestrator (API + worker runtime, process spawner, COOLDOWN_SECONDS=0) runs in
this process against a fresh database. Items are submitted one at a time to an idle
factory; each worker (tests/support/fake_worker.py: register, then complete at once)
is a real child process. Latency = the item's `running` event (the worker registered)
minus its creation, both stamped by PostgreSQL, split into submit -> claimed (the
scheduler) and claimed -> registered (process start-up and the register call).

The baseline, in the same run, is a loop that polls every 5 s with no wake-up on new
work: the same scheduler with its event feed off and a 5 s tick (printed as
"reference"; why the factory does not poll: docs/design.md#scheduling-woken-not-polled).

    python bench/dispatch.py [--items 200] [--baseline-items 30] [--worker fake|real]

`--worker real` starts the product's own worker (`python -m ai_factory.worker`, as the
process spawner does) instead: it registers (the moment measured), then fails its item
at once, because the bench repository's host (git.invalid) does not exist. Its start-up
up to reading WORK_ITEM is printed too.

(The baseline takes ~5 s per item, hence fewer items by default.)

Uses BENCH_DATABASE_URL (default: the machine's PostgreSQL) and creates and drops
its own database there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the stdlib's `queue`; keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid

import httpx
import psycopg
import uvicorn

from ai_factory.core.db.database import Database
from ai_factory.core.db.migrations import apply_migrations
from ai_factory.core.settings import load_settings
from ai_factory.orchestrator.api.app import create_app
from ai_factory.orchestrator.scheduler import Scheduler
from ai_factory.orchestrator.services import Services
from tests.support.net import free_port

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FAKE_WORKER = Path(__file__).resolve().parents[1] / "tests" / "support" / "fake_worker.py"
SPEC = "# bench\nfake-mode: complete\nfake-seconds: 0\n- [ ] register\n"
# Accepted at submit (a remote URL is checked by the worker), never reachable.
BENCH_REPO = "https://git.invalid/bench.git"
ITEM_TIMEOUT_S = 60

LATENCY_SQL = """
SELECT extract(epoch FROM r.created_at - i.created_at)::float AS total,
       extract(epoch FROM a.created_at - i.created_at)::float AS to_claim,
       extract(epoch FROM r.created_at - a.created_at)::float AS to_register
  FROM work_items i
  JOIN LATERAL (SELECT created_at FROM work_item_events e WHERE e.work_item_id = i.id
                 AND e.to_status = 'assigned' ORDER BY id LIMIT 1) a ON true
  JOIN LATERAL (SELECT created_at FROM work_item_events e WHERE e.work_item_id = i.id
                 AND e.to_status = 'running' ORDER BY id LIMIT 1) r ON true
 WHERE i.id = %(id)s
"""


def db_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    http: httpx.AsyncClient, db: Database, n: int, *, jitter_s: float = 0.0
) -> list[dict[str, float]]:
    """Submit n items one at a time, each to an idle factory; return their latencies.

    `jitter_s`: wait a random time up to this before each submission, so that a polling
    loop is met at a random phase (not always right after its last poll).
    """
    results = []
    for _ in range(n):
        await asyncio.sleep(random.uniform(0, jitter_s))
        item = (await http.post("/api/work", json={"repo": BENCH_REPO, "spec": SPEC})).json()
        deadline = time.monotonic() + ITEM_TIMEOUT_S
        while True:
            row = await db.fetch_one(LATENCY_SQL, {"id": uuid.UUID(item["id"])})
            if row is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"item {item['id']} was not started within {ITEM_TIMEOUT_S}s")
            await asyncio.sleep(0.005)
        results.append(row)
        while (await db.fetch_one(
            "SELECT count(*)::int AS n FROM workers WHERE status IN ('idle', 'busy')"
        ))["n"]:  # fmt: skip
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # idle again before the next submission
    return results


def report(name: str, rows: list[dict[str, float]]) -> dict[str, float]:
    total = [r["total"] for r in rows]
    figures = {
        "n": len(total),
        "p50": statistics.median(total),
        "p95": percentile(total, 0.95),
        "max": max(total),
        "claim_p50": statistics.median(r["to_claim"] for r in rows),
        "register_p50": statistics.median(r["to_register"] for r in rows),
    }
    print(
        f"{name:<28} n={figures['n']:<4} p50={figures['p50']:.3f}s p95={figures['p95']:.3f}s"
        f" max={figures['max']:.3f}s  (submit->claimed p50 {figures['claim_p50']:.3f}s,"
        f" claimed->registered p50 {figures['register_p50']:.3f}s)"
    )
    return figures


def startup_cost(argv: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def run(items: int, baseline_items: int, worker: str) -> None:
    name = f"factory_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    home = Path(tempfile.mkdtemp(prefix="factory-bench-"))
    home.chmod(0o711)  # as root, the agent's own user must pass through to FACTORY_HOME
    port = free_port()
    try:
        settings = load_settings(
            _env_file=None,
            database_url=db_url(name),
            factory_home=home,
            port=port,
            orchestrator_url=f"http://127.0.0.1:{port}",
            cooldown_seconds=0,
            max_workers=4,
            daily_budget=1_000_000,  # every fake worker records an iteration
            heartbeat_interval_seconds=30,
            factory_worker_command=f"{sys.executable} {FAKE_WORKER}" if worker == "fake" else None,
        )
        db = await Database.open(settings.database_url, max_size=20)
        await apply_migrations(db)
        services = Services.build(settings, db)
        server = uvicorn.Server(uvicorn.Config(create_app(services), port=port, log_config=None, access_log=False))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        runtime = services.runtime
        events = asyncio.create_task(runtime.events.run())
        await asyncio.wait_for(runtime.events.connected.wait(), 10)
        lifecycle = asyncio.create_task(runtime.lifecycle.run(runtime.events))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            scheduler = asyncio.create_task(runtime.scheduler.run())
            ours = await measure(http, db, items)
            scheduler.cancel()
            await asyncio.gather(scheduler, return_exceptions=True)

            reference = Scheduler(
                ledger=services.ledger,
                lifecycle=runtime.lifecycle,
                rate_limiter=services.rate_limiter,
                events=None,
                tick_s=5.0,
            )
            polling = asyncio.create_task(reference.run())
            baseline = await measure(http, db, baseline_items, jitter_s=5.0) if baseline_items else []
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)

        print(
            f"dispatch latency, submit -> worker registered (process spawner, {worker} worker,"
            f" {os.cpu_count()} cores)"
        )
        mine = report("LISTEN/NOTIFY + 1 s tick", ours)
        if baseline:
            ref = report("reference: 5 s polling", baseline)
            print(f"p50 speed-up over the reference loop: {ref['p50'] / mine['p50']:.1f}x")
        bare = startup_cost([sys.executable, "-c", "pass"])
        fake = startup_cost([sys.executable, "-c", "import json, urllib.request, threading"])
        real = startup_cost([sys.executable, "-m", "ai_factory.worker"], runs=3)
        print(
            f"python start-up: bare {bare:.3f}s, fake worker imports {fake:.3f}s,"
            f" `python -m ai_factory.worker` (the real worker, up to reading WORK_ITEM) {real:.3f}s"
        )
        target = "met" if mine["p50"] <= 0.5 else "NOT met"
        print(f"target p50 <= 0.5 s with the {worker} worker: {target}")

        for task in (lifecycle, events):
            task.cancel()
        await asyncio.gather(lifecycle, events, return_exceptions=True)
        server.should_exit = True
        await serving
        await services.close()
        await db.close()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--baseline-items", type=int, default=30)
    parser.add_argument("--worker", choices=("fake", "real"), default="fake")
    args = parser.parse_args()
    asyncio.run(run(args.items, args.baseline_items, args.worker))


if __name__ == "__main__":
    main()

"""Queue throughput: the ledger against a minimal raw-SQL loop, same database, same run.

8 concurrent clients drain N queued items through the path a real item takes:
claim (with its worker row), the worker registers (item running, worker busy),
the worker completes (item completed, metrics row, worker finished, its locks
released). The raw loop issues the same statements with a bare psycopg
connection per client, autocommit, no models, no checks, no transactions.
Prints both rates and the ratio (target: the ledger >= 60% of raw).

    python bench/queue.py [--items 20000] [--clients 8] [--rounds 2]

Uses BENCH_DATABASE_URL (default: the machine's PostgreSQL) and creates and
drops its own database there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib's `queue`; keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import os
import statistics
import time
import uuid

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.migrations import apply_migrations
from ai_factory.core.models import WorkerCompleteRequest
from ai_factory.orchestrator.conflicts import PostgresConflictDetector
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.tokens import hash_token, new_worker_token

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

RAW_PATH = [
    # claim + worker row
    """WITH c AS (UPDATE work_items SET status = 'assigned', lease_token = gen_random_uuid(),
       attempts = attempts + 1, worker_id = %(w)s, status_reason = 'claimed', updated_at = now()
     WHERE id = (SELECT id FROM work_items WHERE status = 'queued' AND available_at <= now()
                  ORDER BY priority_rank, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING id, lease_token),
     w AS (INSERT INTO workers (id, work_item_id, lease_token, token_hash, status, spawner)
           SELECT %(w)s, id, lease_token, 'h', 'idle', 'bench' FROM c RETURNING id)
     SELECT c.id, c.lease_token FROM c, w""",
    # register
    """UPDATE work_items SET status = 'running', started_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'assigned' AND lease_token = %(lease)s""",
    "UPDATE workers SET status = 'busy', last_heartbeat = now() WHERE id = %(w)s",
    # complete
    """UPDATE work_items SET status = 'completed', pr_url = 'x', completed_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running' AND lease_token = %(lease)s""",
    """INSERT INTO worker_metrics (worker_id, work_item_id, iterations, tokens_used, cost_usd,
       duration_seconds, files_changed, status) VALUES (%(w)s, %(id)s, 1, 1, 0, 0, 0, 'completed')""",
    "UPDATE workers SET status = 'done', finished_at = now() WHERE id = %(w)s",
    "DELETE FROM file_locks WHERE worker_id = %(w)s",
]


def db_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def fill(db: Database, n: int) -> None:
    await db.execute("TRUNCATE work_items, workers, worker_metrics, file_locks CASCADE")
    await db.execute(
        "INSERT INTO work_items (source, source_id, repo, spec)"
        " SELECT 'api', 'b-' || g, '/srv/bench', 'spec' FROM generate_series(1, %(n)s) g",
        {"n": n},
    )
    await db.execute("VACUUM ANALYZE work_items")


async def run_ledger(db: Database, clients: int) -> int:
    ledger = Ledger(db=db, conflicts=PostgresConflictDetector(db=db))
    token_hash = hash_token(new_worker_token())
    done = 0

    async def client() -> None:
        nonlocal done
        while True:
            worker_id = uuid.uuid4()
            claimed = await ledger.claim_next(worker_id=worker_id, token_hash=token_hash, spawner="bench")
            if claimed is None:
                return
            # Each worker call reads its worker row first (the API authenticates it).
            await ledger.start(await ledger.worker(worker_id), host="")
            record = await ledger.worker(worker_id)
            await ledger.complete(record, WorkerCompleteRequest(pr_url="x", iterations=1, tokens=1))
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def run_raw(url: str, clients: int) -> int:
    done = 0

    async def client() -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            while True:
                w = uuid.uuid4()
                row = await (await conn.execute(RAW_PATH[0], {"w": w})).fetchone()
                if row is None:
                    return
                params = {"w": w, "id": row[0], "lease": row[1]}
                for statement in RAW_PATH[1:]:
                    await conn.execute(statement, params)
                done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def main(items: int, clients: int, rounds: int) -> None:
    name = f"bench_queue_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = db_url(name)
    db = await Database.open(url, min_size=clients, max_size=clients)
    try:
        await apply_migrations(db)
        rates: dict[str, list[float]] = {"raw": [], "ledger": []}
        for _ in range(rounds):
            for label in ("raw", "ledger"):
                await fill(db, items)
                start = time.perf_counter()
                if label == "raw":
                    n = await run_raw(url, clients)
                else:
                    n = await run_ledger(db, clients)
                elapsed = time.perf_counter() - start
                assert n == items, (label, n)
                rates[label].append(n / elapsed)
                print(f"  {label:<14} {n} items in {elapsed:6.2f} s = {n / elapsed:8.0f} items/s")
        raw = statistics.median(rates["raw"])
        managed = statistics.median(rates["ledger"])
        print(f"\nclients={clients} items={items} rounds={rounds} (medians)")
        print(f"raw SQL loop   {raw:8.0f} claim+register+complete/s")
        print(f"ledger         {managed:8.0f} claim+register+complete/s")
        print(f"ratio          {managed / raw:8.1%}  (target >= 60%)")
    finally:
        await db.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.clients, args.rounds))

"""Queue throughput: QueueManager against a minimal raw-SQL loop, same database, same run.

8 concurrent clients drain N queued items; each item goes queued -> assigned ->
running -> completed (the transitions a real worker causes). The raw loop issues
the same three UPDATEs with a bare psycopg connection per client and no models,
no error checks. Prints both rates and the ratio (target: QueueManager >= 60%).

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
from ai_factory.orchestrator.queue import QueueManager

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

CLAIM = """
UPDATE work_items SET status = 'assigned', lease_token = gen_random_uuid(), attempts = attempts + 1,
       status_reason = 'claimed', updated_at = now()
 WHERE id = (SELECT id FROM work_items WHERE status = 'queued' AND available_at <= now()
              ORDER BY priority_rank, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, lease_token"""
START = """UPDATE work_items SET status = 'running', started_at = now(), updated_at = now()
 WHERE id = %s AND status = 'assigned' AND lease_token = %s"""
COMPLETE = """UPDATE work_items SET status = 'completed', pr_url = 'x', completed_at = now(), updated_at = now()
 WHERE id = %s AND status = 'running' AND lease_token = %s"""


def db_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def fill(db: Database, n: int) -> None:
    await db.execute("TRUNCATE work_items CASCADE")
    await db.execute(
        "INSERT INTO work_items (source, source_id, repo, spec)"
        " SELECT 'api', 'b-' || g, '/srv/bench', 'spec' FROM generate_series(1, %(n)s) g",
        {"n": n},
    )
    await db.execute("VACUUM ANALYZE work_items")


async def run_queue_manager(db: Database, clients: int) -> int:
    queue = QueueManager(db=db)
    done = 0

    async def client() -> None:
        nonlocal done
        while (a := await queue.claim_next()) is not None:
            await queue.start(a.item.id, a.lease_token)
            await queue.complete(a.item.id, a.lease_token, pr_url="x", iterations=1, tokens=1)
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def run_raw(url: str, clients: int) -> int:
    done = 0

    async def client() -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            while True:
                row = await (await conn.execute(CLAIM)).fetchone()
                if row is None:
                    return
                await conn.execute(START, row)
                await conn.execute(COMPLETE, row)
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
        rates: dict[str, list[float]] = {"raw": [], "queue_manager": []}
        for _ in range(rounds):
            for label in ("raw", "queue_manager"):
                await fill(db, items)
                start = time.perf_counter()
                if label == "raw":
                    n = await run_raw(url, clients)
                else:
                    n = await run_queue_manager(db, clients)
                elapsed = time.perf_counter() - start
                assert n == items, (label, n)
                rates[label].append(n / elapsed)
                print(f"  {label:<14} {n} items in {elapsed:6.2f} s = {n / elapsed:8.0f} items/s")
        raw = statistics.median(rates["raw"])
        managed = statistics.median(rates["queue_manager"])
        print(f"\nclients={clients} items={items} rounds={rounds} (medians)")
        print(f"raw SQL loop   {raw:8.0f} claim+start+complete/s")
        print(f"QueueManager   {managed:8.0f} claim+start+complete/s")
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

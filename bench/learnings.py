"""Learnings search: quality on a labelled set, and latency with 100,000 learnings.

Quality: bench/data/learnings.json holds 75 learnings about five fictional
repositories (plus global ones) and 57 queries phrased as specs, each with the
learnings a worker doing it should get. Every query runs as a worker's search does
(its repo plus global learnings), and once over all repositories, with full-text
alone, vector alone and hybrid (reciprocal rank fusion). Prints recall@5 and MRR
per embedder.

Latency: 100,000 generated learnings over 200 repositories (0.1% global) are loaded
with COPY, the HNSW index is built, and the labelled queries run against it through
`LearningStore.search` (embedding the query, ranking, fetching, counting the use).
Prints p50 and p95 per mode, with the labelled set's recall@5 among the noise.

Runs against an embedded PostgreSQL with pgvector started in a temporary folder.

    python bench/learnings.py [--embedders hashing,wordllama] [--rows 100000]
        [--rounds 3] [--latency-embedder auto] [--misses]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py shadows the stdlib's `queue`; keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ai_factory.core.db.database import Database
from ai_factory.core.db.embedded import EmbeddedPostgres
from ai_factory.core.db.migrations import apply_migrations
from ai_factory.core.learnings.embedder import Embedder, embedder_from_name
from ai_factory.core.learnings.models import SearchMode
from ai_factory.core.learnings.store import LearningStore, scope_repos

DATA = Path(__file__).parent / "data" / "learnings.json"
MODES = (SearchMode.TEXT, SearchMode.VECTOR, SearchMode.HYBRID)
K = 5


@dataclass
class Labelled:
    learnings: list[dict[str, str]]
    queries: list[dict]

    @classmethod
    def load(cls) -> Labelled:
        data = json.loads(DATA.read_text("utf-8"))
        return cls(data["learnings"], data["queries"])


@dataclass
class Scores:
    recall: list[float] = field(default_factory=list)
    rr: list[float] = field(default_factory=list)

    def add(self, ranked: list[str], relevant: set[str]) -> None:
        self.recall.append(len(set(ranked[:K]) & relevant) / len(relevant))
        rank = next((i for i, key in enumerate(ranked, 1) if key in relevant), None)
        self.rr.append(1 / rank if rank else 0.0)

    def row(self) -> str:
        return f"{statistics.fmean(self.recall):>9.3f} {statistics.fmean(self.rr):>7.3f}"

    def halves(self) -> str:
        """recall@5 / MRR over the even- and the odd-numbered queries: choose a parameter
        on one half, check it on the other."""
        return "  ".join(
            f"{statistics.fmean(self.recall[start::2]):>5.3f} {statistics.fmean(self.rr[start::2]):>5.3f}"
            for start in (0, 1)
        )


# --- the server ---


def database_url(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET maintenance_work_mem = '1GB'")
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def open_store(url: str, embedder: Embedder) -> tuple[Database, LearningStore]:
    db = await Database.open(url, max_size=4)
    await apply_migrations(db)
    return db, LearningStore(db=db, embedder=embedder)


# --- quality ---


async def load_labelled(store: LearningStore, labelled: Labelled) -> dict[str, str]:
    """Save the labelled learnings; return {learning id: key}."""
    keys = {}
    for item in labelled.learnings:
        saved = await store.save(item["repo"], item["content"])
        keys[str(saved.id)] = item["key"]
    return keys


async def evaluate(
    store: LearningStore, labelled: Labelled, keys: dict[str, str], *, scoped: bool,
    misses: bool = False,
) -> dict[SearchMode, Scores]:
    results = {mode: Scores() for mode in MODES}
    for number, query in enumerate(labelled.queries):
        repos = scope_repos(query["repo"]) if scoped else None
        found: dict[SearchMode, list[str]] = {}
        for mode in MODES:
            ranked = await store.rank(query["query"], repos=repos, limit=K, mode=mode)
            found[mode] = [keys.get(str(i), "?") for i, _ in ranked]
            results[mode].add(found[mode], set(query["relevant"]))
        if misses:
            print_misses(number, query, found)
    return results


def print_misses(number: int, query: dict, found: dict[SearchMode, list[str]]) -> None:
    """A query whose hybrid top 5 lacks a relevant learning, with each mode's rank of it."""
    missed = [key for key in query["relevant"] if key not in found[SearchMode.HYBRID][:K]]
    if not missed:
        return
    print(f"  #{number} {query['query']}")
    for key in missed:
        ranks = "  ".join(
            f"{mode.value} {found[mode].index(key) + 1 if key in found[mode] else '-'}"
            for mode in MODES
        )
        print(f"     missed {key}: rank {ranks}")
    print(f"     hybrid top {K}: {' '.join(found[SearchMode.HYBRID][:K])}")


async def quality(
    admin_url: str, embedders: list[Embedder], labelled: Labelled, *, misses: bool
) -> None:
    print(f"\nquality: {len(labelled.learnings)} learnings, {len(labelled.queries)} queries, recall@{K} and MRR")
    print(
        f"{'embedder':<28} {'search':<9} {'mode':<7} {'recall@5':>9} {'MRR':>7}"
        f"   {'even: recall MRR':<17} {'odd: recall MRR'}"
    )
    for embedder in embedders:
        db, store = await open_store(database_url(admin_url, "bench_quality"), embedder)
        try:
            keys = await load_labelled(store, labelled)
            for scoped in (True, False):
                if misses and scoped:
                    print(f"hybrid misses of {embedder.name}, repo+glob (rank in each mode, - if unranked):")
                results = await evaluate(store, labelled, keys, scoped=scoped, misses=misses and scoped)
                for mode in MODES:
                    where = "repo+glob" if scoped else "all repos"
                    print(
                        f"{embedder.name:<28} {where:<9} {mode.value:<7} {results[mode].row()}"
                        f"         {results[mode].halves()}"
                    )
        finally:
            await db.close()


# --- latency ---

TOOLS = ["pytest", "jest", "cargo", "gradle", "maven", "webpack", "vite", "docker", "helm",
         "terraform", "eslint", "ruff", "mypy", "black", "prettier", "alembic", "flyway",
         "celery", "sidekiq", "redis", "kafka", "nginx", "postgres", "mysql", "mongodb",
         "graphql", "grpc", "storybook", "cypress", "playwright", "sentry", "datadog"]
THINGS = ["the login form", "the export job", "the search index", "the billing report",
          "the upload handler", "the cache layer", "the admin dashboard", "the email sender",
          "the API client", "the rate limiter", "the session store", "the audit log",
          "the image resizer", "the CSV importer", "the feature flags", "the job queue",
          "the notification service", "the payment form", "the user settings page",
          "the health check", "the metrics endpoint", "the config loader", "the retry logic",
          "the webhook receiver", "the migrations", "the test fixtures", "the docs site"]
PROBLEMS = ["fails on an empty input", "times out under load", "leaks connections",
            "breaks when the locale is not English", "is not covered by tests",
            "needs an environment variable set", "must run before the build step",
            "is slow without an index", "crashes on Windows paths", "caches stale data",
            "logs secrets unless redacted", "double-counts retries", "ignores the timezone",
            "needs a feature flag", "requires a database migration", "has a flaky test"]
ADVICE = ["run the linter before committing", "add a regression test first",
          "use the shared helper instead of a copy", "check the changelog entry",
          "pin the version in the lock file", "read the README section on setup",
          "ask for a review from the owning team", "keep the change behind a flag",
          "mock the clock in tests", "batch the writes", "add an index on the foreign key",
          "document the new setting", "wrap the call in a transaction",
          "use the staging credentials from the vault", "bump the schema version"]


def generated_learnings(n: int, rng: random.Random) -> list[tuple[str, str]]:
    repos = [f"org{i % 20}/service-{i}" for i in range(200)]
    rows = []
    for i in range(n):
        repo = "*" if rng.random() < 0.001 else rng.choice(repos)
        text = (
            f"{rng.choice(THINGS).capitalize()} {rng.choice(PROBLEMS)} with {rng.choice(TOOLS)}; "
            f"{rng.choice(ADVICE)} (seen in task {i})."
        )
        rows.append((repo, text))
    return rows


def copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


async def load_generated(db: Database, embedder: Embedder, rows: list[tuple[str, str]]) -> float:
    """COPY `rows` in with their vectors, before any vector index exists."""
    started = time.perf_counter()
    batch = 5000
    async with db.connection() as conn:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            vectors = await asyncio.to_thread(embedder.embed, [text for _, text in chunk])
            lines = [
                f"{copy_text(repo)}\t{copy_text(text)}\t{embedder.name}\t"
                "{" + ",".join(f"{x:.6g}" for x in vector) + "}\n"
                for (repo, text), vector in zip(chunk, vectors, strict=True)
            ]
            async with (
                conn.cursor() as cur,
                cur.copy("COPY learnings (repo, content, embedder, embedding) FROM STDIN") as copy,
            ):
                await copy.write("".join(lines).encode())
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(admin_url: str, embedder: Embedder, labelled: Labelled, rows: int, rounds: int) -> None:
    db = await Database.open(database_url(admin_url, "bench_latency"), max_size=4)
    try:
        await apply_migrations(db)
        loaded = await load_generated(db, embedder, generated_learnings(rows, random.Random(7)))
        store = LearningStore(db=db, embedder=embedder)
        started = time.perf_counter()
        await store.prepare()  # builds the HNSW index over the loaded rows
        indexed = time.perf_counter() - started
        keys = await load_labelled(store, labelled)
        await db.execute("ANALYZE learnings")
        print(
            f"\nlatency: {rows + len(labelled.learnings)} learnings, embedder {embedder.name}"
            f" (load {loaded:.1f} s, HNSW build {indexed:.1f} s), {rounds} rounds of"
            f" {len(labelled.queries)} queries, limit 10, LearningStore.search end to end"
        )
        print(f"{'search':<9} {'mode':<7} {'p50 ms':>8} {'p95 ms':>8} {'recall@5':>9} {'MRR':>7}")
        for scoped in (True, False):
            for mode in MODES:
                times: list[float] = []
                scores = Scores()
                for round_ in range(rounds + 1):  # round 0 warms up
                    for query in labelled.queries:
                        t0 = time.perf_counter()
                        found = await store.search(
                            repo=query["repo"] if scoped else None,
                            search=query["query"], limit=10, mode=mode,
                        )
                        elapsed = (time.perf_counter() - t0) * 1000
                        if round_ == 0:
                            scores.add([keys.get(str(r.id), "?") for r in found], set(query["relevant"]))
                        else:
                            times.append(elapsed)
                where = "repo+glob" if scoped else "all repos"
                print(
                    f"{where:<9} {mode.value:<7} {percentile(times, 0.5):>8.1f}"
                    f" {percentile(times, 0.95):>8.1f} {scores.row()}"
                    f"   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
                )
    finally:
        await db.close()


async def main(args: argparse.Namespace) -> None:
    labelled = Labelled.load()
    embedders = [embedder_from_name(name) for name in args.embedders.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-learnings-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        url = await asyncio.to_thread(server.start)
        try:
            await quality(url, embedders, labelled, misses=args.misses)
            if args.rows:
                await latency(url, embedder_from_name(args.latency_embedder), labelled, args.rows, args.rounds)
        finally:
            await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", default="hashing,wordllama")
    parser.add_argument("--latency-embedder", default="auto")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--misses", action="store_true", help="print the hybrid misses per query")
    # Something imported turns on INFO logging for the root logger; the figures are the output.
    logging.basicConfig(level=logging.WARNING, force=True)
    asyncio.run(main(parser.parse_args()))

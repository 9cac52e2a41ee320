"""Learnings search: quality on labelled sets, a worker's context by budget, merging of
near-duplicates, and latency with 100,000 learnings, on both kinds of PostgreSQL server.

Backends: the embedded server with pgvector (vectors ranked by its HNSW index) and a plain
PostgreSQL without it (TEST_DATABASE_URL, default the local server; vectors ranked exactly
in the process). Each is given a fresh database.

Labelled sets (bench/data/):
* learnings.json, the tuning set: 75 learnings about five fictional repositories plus
  global ones, 57 one-sentence queries. Choices were made on it.
* learnings-heldout.json, held out: 109 learnings about three other repositories plus
  global ones, 81 queries written as specs (title and tasks; searched as a worker searches,
  `worker.learnings.search_text`), and 30 pairs for merging. Written for issue 16 before
  the changes it measures; nothing was tuned on it.

Quality: every query runs as a worker's search does (its repo plus global learnings) with
full text alone, vectors alone and both fused. Prints recall@5 and MRR, and both over the
even- and odd-numbered queries (choose on one half, check on the other).

Context: what a worker is given for each query at LEARNINGS_BUDGET_TOKENS (and a few other
budgets): context recall (the share of relevant learnings that reach the prompt) and the
tokens its learnings add to every iteration's prompt; beside it the old fixed top ten.

Merging: each pair's new text is saved into the set's repo; a pair marked duplicate should
be merged, the others stored apart.

Latency: 100,000 generated learnings over 200 repositories (0.1% global) are loaded with
COPY, then the held-out set; the held-out queries run through `LearningStore.search` (embed,
rank, fetch, count the use) and `LearningStore.context`. Prints p50 and p95; on the plain
server also the first search of each repository (its vectors not yet cached).

    python bench/learnings.py [--backends embedded,plain] [--embedders wordllama,hashing]
        [--rows 100000] [--rounds 3] [--misses]
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
from ai_factory.core.learnings.context import estimate_tokens
from ai_factory.core.learnings.embedder import Embedder, embedder_from_name
from ai_factory.core.learnings.models import SearchMode
from ai_factory.core.learnings.store import LearningStore, scope_repos
from ai_factory.core.settings import Settings
from ai_factory.core.spec import parse_tasks
from ai_factory.worker.learnings import search_text
from ai_factory.worker.prompt import PromptContext, iteration_prompt

DATA = Path(__file__).parent / "data"
SETS = {"tuning": DATA / "learnings.json", "held-out": DATA / "learnings-heldout.json"}
PLAIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MODES = (SearchMode.TEXT, SearchMode.VECTOR, SearchMode.HYBRID)
K = 5
BUDGETS = (500, 1000, 3000)
DEFAULT_BUDGET = Settings.model_fields["learnings_budget_tokens"].default


@dataclass
class Labelled:
    name: str
    learnings: list[dict[str, str]]
    queries: list[dict]
    duplicates: list[dict]

    @classmethod
    def load(cls, name: str) -> Labelled:
        data = json.loads(SETS[name].read_text("utf-8"))
        queries = [
            {**q, "query": search_text(q["spec"]) if "spec" in q else q["query"]}
            for q in data["queries"]
        ]
        return cls(name, data["learnings"], queries, data.get("duplicates", []))


@dataclass
class Scores:
    recall: list[float] = field(default_factory=list)
    rr: list[float] = field(default_factory=list)

    def add(self, ranked: list[str], relevant: set[str], *, k: int | None = K) -> None:
        self.recall.append(len(set(ranked[:k]) & relevant) / len(relevant))
        rank = next((i for i, key in enumerate(ranked, 1) if key in relevant), None)
        self.rr.append(1 / rank if rank else 0.0)

    def row(self) -> str:
        return f"{statistics.fmean(self.recall):>9.3f} {statistics.fmean(self.rr):>7.3f}"

    def halves(self) -> str:
        """recall / MRR over the even- and the odd-numbered queries."""
        return "  ".join(
            f"{statistics.fmean(self.recall[start::2]):>5.3f} {statistics.fmean(self.rr[start::2]):>5.3f}"
            for start in (0, 1)
        )


# --- the servers ---


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET maintenance_work_mem = '1GB'")
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


async def open_store(url: str, embedder: Embedder) -> tuple[Database, LearningStore]:
    db = await Database.open(url, max_size=4)
    await apply_migrations(db)
    await db.refresh_capabilities()
    return db, LearningStore(db=db, embedder=embedder)


# --- quality, context, merging ---


async def load_labelled(store: LearningStore, labelled: Labelled) -> dict[str, str]:
    """Save the labelled learnings (merging off: each is its own learning); {id: key}."""
    merge_at, store.merge_at = store.merge_at, 1.0
    keys = {}
    for item in labelled.learnings:
        saved = await store.save(item["repo"], item["content"])
        keys[str(saved.id)] = item["key"]
    store.merge_at = merge_at
    return keys


async def evaluate(
    store: LearningStore, labelled: Labelled, keys: dict[str, str], *, misses: bool
) -> dict[SearchMode, Scores]:
    results = {mode: Scores() for mode in MODES}
    for number, query in enumerate(labelled.queries):
        found: dict[SearchMode, list[str]] = {}
        for mode in MODES:
            ranked = await store.rank(query["query"], repos=scope_repos(query["repo"]), limit=K, mode=mode)
            found[mode] = [keys.get(str(i), "?") for i, _ in ranked]
            results[mode].add(found[mode], set(query["relevant"]))
        if misses:
            print_misses(number, query, found)
    return results


def print_misses(number: int, query: dict, found: dict[SearchMode, list[str]]) -> None:
    missed = [key for key in query["relevant"] if key not in found[SearchMode.HYBRID][:K]]
    if not missed:
        return
    print(f"  #{number} {query['query'][:150]}")
    for key in missed:
        ranks = "  ".join(
            f"{mode.value} {found[mode].index(key) + 1 if key in found[mode] else '-'}" for mode in MODES
        )
        print(f"     missed {key}: rank {ranks}")
    print(f"     hybrid top {K}: {' '.join(found[SearchMode.HYBRID][:K])}")


def learnings_section_tokens(learnings: list[str]) -> int:
    """Tokens the learnings add to one iteration's prompt (the prompt with them, less
    the prompt without them)."""
    base = PromptContext(iteration=1, max_iterations=20, spec="# x\n- [ ] y\n", tasks=parse_tasks("- [ ] y"))
    without = iteration_prompt(base)
    base.learnings = learnings
    return estimate_tokens(iteration_prompt(base)) - estimate_tokens(without)


async def context_recall(
    store: LearningStore, labelled: Labelled, keys: dict[str, str], budget: int | None
) -> tuple[Scores, list[int], list[int]]:
    """Context recall at `budget` (None: the old fixed top ten), the tokens per iteration,
    and how many learnings each worker got."""
    scores, tokens, counts = Scores(), [], []
    for query in labelled.queries:
        if budget is None:
            found = await store.search(repo=query["repo"], search=query["query"], limit=10, count_use=False)
        else:
            found = (await store.context(repo=query["repo"], search=query["query"], budget_tokens=budget)).learnings
        scores.add([keys.get(str(r.id), "?") for r in found], set(query["relevant"]), k=None)
        tokens.append(learnings_section_tokens([r.content for r in found]))
        counts.append(len(found))
    return scores, tokens, counts


async def merging(store: LearningStore, labelled: Labelled) -> str:
    repo_of = {item["key"]: item["repo"] for item in labelled.learnings}
    right = {True: 0, False: 0}
    for pair in labelled.duplicates:
        saved = await store.save(repo_of[pair["of"]], pair["content"])
        right[pair["duplicate"]] += saved.merged == pair["duplicate"]
        if saved.created:
            await store.delete(saved.id)
    same = sum(p["duplicate"] for p in labelled.duplicates)
    return (
        f"merging (threshold {store.merge_at:.2f}): {right[True]} of {same} restatements merged,"
        f" {right[False]} of {len(labelled.duplicates) - same} other texts kept apart"
    )


async def quality(backend: str, admin_url: str, embedders: list[Embedder], sets: list[Labelled], *, misses: bool) -> None:
    for embedder in embedders:
        for labelled in sets:
            url = fresh_database(admin_url, "bench_quality")
            db, store = await open_store(url, embedder)
            try:
                keys = await load_labelled(store, labelled)
                print(
                    f"\n{backend} ({store.vector_search}), {labelled.name} set: {len(labelled.learnings)} learnings,"
                    f" {len(labelled.queries)} queries"
                )
                print(f"  {'mode':<7} {'recall@5':>9} {'MRR':>7}   {'even: recall MRR':<17} {'odd: recall MRR'}")
                results = await evaluate(store, labelled, keys, misses=misses)
                for mode in MODES:
                    print(f"  {mode.value:<7} {results[mode].row()}         {results[mode].halves()}")
                print(f"  {'context':<16} {'recall':>6}   {'even':>5} {'odd':>5}   {'tokens/iteration mean max':<26} learnings given (mean)")
                for budget in (None, *BUDGETS[:2], DEFAULT_BUDGET, *BUDGETS[2:]):
                    scores, tokens, counts = await context_recall(store, labelled, keys, budget)
                    name = "fixed top 10" if budget is None else f"budget {budget}" + (" *" if budget == DEFAULT_BUDGET else "")
                    halves = [statistics.fmean(scores.recall[s::2]) for s in (0, 1)]
                    print(
                        f"  {name:<16} {statistics.fmean(scores.recall):>6.3f}   {halves[0]:>5.3f} {halves[1]:>5.3f}"
                        f"   {statistics.fmean(tokens):>15.0f} {max(tokens):>5}       {statistics.fmean(counts):.1f}"
                    )
                if labelled.duplicates:
                    print("  " + await merging(store, labelled))
            finally:
                await db.close()
                drop_database(admin_url, url)


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


async def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = await call
    return (time.perf_counter() - started) * 1000, result


async def latency(backend: str, admin_url: str, embedder: Embedder, labelled: Labelled, rows: int, rounds: int) -> None:
    url = fresh_database(admin_url, "bench_latency")
    db = await Database.open(url, max_size=4)
    try:
        await apply_migrations(db)
        await db.refresh_capabilities()
        loaded = await load_generated(db, embedder, generated_learnings(rows, random.Random(7)))
        store = LearningStore(db=db, embedder=embedder)
        started = time.perf_counter()
        await store.prepare()  # with pgvector: builds the HNSW index over the loaded rows
        indexed = time.perf_counter() - started
        keys = await load_labelled(store, labelled)
        await db.execute("VACUUM ANALYZE learnings")
        print(
            f"\nlatency on {backend} ({store.vector_search}): {rows + len(labelled.learnings)} learnings"
            f" (load {loaded:.1f} s, index {indexed:.1f} s), {rounds} rounds of the {labelled.name}"
            f" set's {len(labelled.queries)} queries, LearningStore end to end"
        )
        first: list[float] = []
        if backend == "plain":  # each repo's first search reads its vectors
            for query in {q["repo"]: q for q in labelled.queries}.values():
                ms, _ = await timed(store.search(repo=query["repo"], search=query["query"], limit=10, count_use=False))
                first.append(ms)
        print(f"  {'call':<22} {'p50 ms':>8} {'p95 ms':>8} {'recall@5':>9} {'MRR':>7}")
        for label, mode, scoped in [
            (f"search {m.value}, repo+glob", m, True) for m in MODES
        ] + [("search hybrid, all repos", SearchMode.HYBRID, False)]:
            times: list[float] = []
            scores = Scores()
            for round_ in range(rounds + 1):  # round 0 warms up
                for query in labelled.queries:
                    ms, found = await timed(store.search(
                        repo=query["repo"] if scoped else None, search=query["query"], limit=10, mode=mode,
                    ))
                    if round_ == 0:
                        scores.add([keys.get(str(r.id), "?") for r in found], set(query["relevant"]))
                    else:
                        times.append(ms)
            print(f"  {label:<22} {percentile(times, 0.5):>8.1f} {percentile(times, 0.95):>8.1f} {scores.row()}")
        times = []
        for _ in range(rounds):
            for query in labelled.queries:
                ms, _ = await timed(store.context(repo=query["repo"], search=query["query"], budget_tokens=DEFAULT_BUDGET))
                times.append(ms)
        print(f"  {'context, budget ' + str(DEFAULT_BUDGET):<22} {percentile(times, 0.5):>8.1f} {percentile(times, 0.95):>8.1f}")
        if first:
            print(f"  first search of a repo: {', '.join(f'{ms:.0f}' for ms in first)} ms (vectors read into the cache)")
        print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    finally:
        await db.close()
        drop_database(admin_url, url)


async def main(args: argparse.Namespace) -> None:
    sets = [Labelled.load(name) for name in args.sets.split(",")]
    embedders = [embedder_from_name(name) for name in args.embedders.split(",")]
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-learnings-") as folder:
        server = None
        urls = {"plain": PLAIN_URL}
        if "embedded" in backends:
            server = EmbeddedPostgres(Path(folder) / "pg")
            urls["embedded"] = await asyncio.to_thread(server.start)
        try:
            for backend in backends:
                await quality(backend, urls[backend], embedders, sets, misses=args.misses)
            if args.rows:
                for backend in backends:
                    await latency(backend, urls[backend], embedders[0], sets[-1], args.rows, args.rounds)
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="embedded,plain")
    parser.add_argument("--embedders", default="wordllama", help="the first one also runs the latency part")
    parser.add_argument("--sets", default="tuning,held-out")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--misses", action="store_true", help="print the hybrid misses per query")
    # Something imported turns on INFO logging for the root logger; the figures are the output.
    logging.basicConfig(level=logging.WARNING, force=True)
    asyncio.run(main(parser.parse_args()))

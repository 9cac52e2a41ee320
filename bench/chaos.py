"""Chaos: kill, stop and starve a real factory while it works; count wrong outcomes.

A real `factory orchestrator` (process spawner, real `factory worker` processes, the real
`claude` binary against the scripted model) works through ITEMS items of 3 tasks each on
a local repository, on a PostgreSQL cluster this script starts itself (so that it can
take the database away without touching anyone else's). Every task appends one unique
line to the item's own file, so a task done twice, or lost, shows in the file.

Meanwhile a chaos loop, until INTERRUPTIONS interruptions were made:
- kill -9 a worker's process group at a random moment;
- kill -9 a worker exactly between a file's write and its commit, or between a commit and
  its checkbox (the scripted model holds its reply there: `Scenario.hold_before`);
- SIGSTOP a worker for longer than the heartbeat timeout, then SIGCONT it;
- stop PostgreSQL for longer than the heartbeat timeout, then start it again.

At the end each item is checked: completed with exactly its three lines (in order, once
each) is correct; failed after MAX_ATTEMPTS attempts is accepted (it was killed that many
times); anything else is wrong: corrupted (lines missing or doubled), stuck or failed
with its work done, failed before its attempts were used up. A worker given up for
silence that was never SIGSTOPped was killed by an outage: counted too.

    python bench/chaos.py [--items 12] [--interruptions 40] [--seed 7]

Targets: zero wrong outcomes over at least 40 interruptions, zero workers killed by an
outage. Loopback only; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from ai_factory.sim import Scenario, SimServer  # noqa: E402

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))
HEARTBEAT_TIMEOUT_S = 6
MAX_ATTEMPTS = 6
TASKS = 3


class Cluster:
    """A throwaway PostgreSQL cluster on a free port (run as `postgres` when we are root)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.dir / "data"
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True)

    def init(self) -> str:
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE chaos")
        return f"postgresql://postgres@127.0.0.1:{self.port}/chaos"

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def spec_for(n: int) -> str:
    lines = [f"# Item {n}"] + [f"- [ ] Append `item {n} task {t}` to `item{n}.txt`" for t in range(1, TASKS + 1)]
    return "\n".join(lines) + "\n"


def expected(n: int) -> str:
    return "".join(f"item {n} task {t}\n" for t in range(1, TASKS + 1))


class Chaos:
    def __init__(self, factory, sim: SimServer, cluster: Cluster, database_url: str, rng: random.Random):
        self.factory, self.sim, self.cluster, self.url, self.rng = factory, sim, cluster, database_url, rng
        self.counts: dict[str, int] = {}
        self.stopped_workers: set[str] = set()
        self.outage_workers: set[str] = set()

    def note(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        print(f"  chaos: {kind} (total {sum(self.counts.values())})", flush=True)

    def running(self) -> list[tuple[str, int]]:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT id::text, pid FROM workers WHERE worker_is_live(status, finished_at)"
                    " AND pid IS NOT NULL").fetchall()  # fmt: skip
            return [(wid, pid) for wid, pid in rows if _alive(pid)]
        except psycopg.Error:
            return []

    def kill_random(self) -> bool:
        workers = self.running()
        if not workers:
            return False
        time.sleep(self.rng.uniform(0, 3))  # a random moment of its work
        wid, pid = self.rng.choice(workers)
        if _signal(pid, signal.SIGKILL):
            self.note("kill -9 at a random moment")
            return True
        return False

    def kill_at(self, point: str) -> bool:
        self.sim.set_scenario(Scenario(hold_before=point, hold_s=20))
        if not self.sim.held.wait(40):
            self.sim.set_scenario(Scenario())
            return False
        held = self.running()
        killed = False
        # The holding worker is the one whose request is pending: kill every worker that is
        # not done, the held one among them (its commit or box never happens).
        for _wid, pid in held[:1] if len(held) == 1 else held:
            killed |= _signal(pid, signal.SIGKILL)
        self.sim.set_scenario(Scenario())
        if killed:
            self.note(f"kill -9 before the {point}")
        return killed

    def stop_and_continue(self) -> bool:
        workers = self.running()
        if not workers:
            return False
        wid, pid = self.rng.choice(workers)
        if not _signal(pid, signal.SIGSTOP):
            return False
        self.stopped_workers.add(wid)
        self.note("SIGSTOP beyond the heartbeat timeout")
        time.sleep(HEARTBEAT_TIMEOUT_S + 4)
        _signal(pid, signal.SIGCONT)
        return True

    def outage(self) -> bool:
        self.outage_workers |= {wid for wid, _pid in self.running()}
        self.cluster.stop()
        self.note("database outage beyond the heartbeat timeout")
        time.sleep(HEARTBEAT_TIMEOUT_S + 6)
        self.cluster.start()
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _signal(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--interruptions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from bench.rig import free_port, sample_repo

    cluster = Cluster(free_port())
    database_url = cluster.init()
    os.environ["BENCH_DATABASE_URL"] = database_url.rsplit("/", 1)[0] + "/postgres"
    import bench.rig as rig

    rig.ADMIN_URL = os.environ["BENCH_DATABASE_URL"]
    started = time.monotonic()
    try:
        with SimServer() as sim, rig.BenchFactory(
            sim, max_workers=2, max_attempts=MAX_ATTEMPTS,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S, heartbeat_interval_seconds=1,
            health_check_interval_seconds=1, shutdown_grace_seconds=0, stuck_after=4,
            max_iterations=12, spawn_retry_seconds=1, local_repo_roots=tempfile.gettempdir(),
        ) as factory:  # fmt: skip
            factory_db = factory.env["DATABASE_URL"]
            repo = sample_repo(factory.base / "repo")
            ids = [factory.submit(repo, spec_for(n)) for n in range(1, args.items + 1)]
            chaos = Chaos(factory, sim, cluster, factory_db, rng)
            moves = [chaos.kill_random, lambda: chaos.kill_at("commit"),
                     lambda: chaos.kill_at("check"), chaos.stop_and_continue, chaos.outage]  # fmt: skip
            weights = [4, 3, 3, 2, 1]
            made = 0
            while made < args.interruptions:
                if all(i["status"] in ("completed", "failed", "stuck", "cancelled")
                       for i in _items(factory, ids)):  # fmt: skip
                    for _ in range(2):
                        ids.append(factory.submit(repo, spec_for(len(ids) + 1)))
                move = rng.choices(moves, weights)[0]
                if move():
                    made += 1
                time.sleep(rng.uniform(0.5, 2))
            items = factory.wait_settled(ids, timeout_s=1800)
            report(items, factory, repo, chaos, started)
    finally:
        cluster.remove()
    return 0


def _items(factory, ids: list[str]) -> list[dict]:
    try:
        return [factory.get(f"/api/work/{i}") for i in ids]
    except Exception:  # the database may be away: not settled
        return [{"status": "unknown"}]


def report(items: list[dict], factory, repo: Path, chaos: Chaos, started: float) -> None:
    from bench.rig import git

    correct = failed_max = 0
    wrong: list[str] = []
    for n, item in enumerate(items, start=1):
        if item["status"] == "completed":
            branch = item["prUrl"].split("#", 1)[1]
            try:
                text = git(repo, "show", f"{branch}:item{n}.txt")
            except subprocess.CalledProcessError:
                text = "(no such file on the branch)"
            if text == expected(n):
                correct += 1
            else:
                wrong.append(f"item {n} completed with {text!r}")
        elif item["status"] == "failed" and item["attempts"] >= item["maxAttempts"]:
            failed_max += 1
        else:
            wrong.append(f"item {n} {item['status']} after {item['attempts']} attempts: {(item.get('error') or '')[:200]}")
    with psycopg.connect(factory.env["DATABASE_URL"]) as conn:
        silent = conn.execute(
            "SELECT w.id::text FROM workers w JOIN work_item_events e ON e.data->>'workerId' = w.id::text"
            " WHERE e.reason LIKE %s", ("%no heartbeat%",)).fetchall()  # fmt: skip
    outage_kills = {wid for (wid,) in silent} - chaos.stopped_workers
    print(f"\nchaos run: {len(items)} items, {sum(chaos.counts.values())} interruptions"
          f" in {time.monotonic() - started:.0f} s")  # fmt: skip
    for kind, count in sorted(chaos.counts.items()):
        print(f"  {count:3d}  {kind}")
    print(f"completed correctly (file checked)   {correct}")
    print(f"failed after MAX_ATTEMPTS            {failed_max}")
    print(f"wrong outcomes                       {len(wrong)}")
    for line in wrong:
        print(f"  - {line}")
    print(f"workers killed by an outage          {len(outage_kills)}")
    met = not wrong and not outage_kills and sum(chaos.counts.values()) >= 40
    print(f"target (0 wrong, 0 outage kills, >= 40 interruptions): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())

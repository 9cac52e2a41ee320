"""CLI start-up: how long `factory --help` and `factory status` take, start to exit.

Every `factory` command is a fresh interpreter, so what it imports before doing
anything is paid on every call. Each command runs `--runs` times (default 20) as a
subprocess; the median and the 90th percentile of wall time are printed (and the
median CPU time, user + system, which other load on the machine disturbs less), beside a
bare interpreter (`python -c pass`) and, as the baseline, an interpreter that only
imports what the CLI once imported for every command (httpx, Rich's console and
tables, the settings with pydantic-settings, the models). `factory status` talks to
a stand-in API on 127.0.0.1 serving a canned /api/status, so the figure is the
CLI's own cost, not the orchestrator's.

    python bench/cli.py [--runs 20] [--src DIR]

`--src DIR` measures another checkout's `src` (e.g. `git archive HEAD~1 src | tar -x
-C /tmp/old`) through PYTHONPATH, for a before/after in one run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the stdlib's `queue`; keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import resource
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGET_S = 0.25
STATUS = {
    "queue": {"queued": 1, "running": 1, "completed": 5, "failed": 2,
              "byStatus": {"queued": 1, "running": 1, "completed": 5, "failed": 1, "stuck": 1}},
    "workers": {"active": 1, "stuck": 0},
    "rateLimits": {"maxWorkers": 2, "iterationsToday": 12, "dailyBudget": 200,
                   "costTodayUsd": 0.0, "canSpawn": True, "blockedBy": []},
    "metrics": {"totalTokensToday": 123456},
}  # fmt: skip
OLD_IMPORTS = (
    "import httpx, rich.console, rich.table, typer;"
    " import ai_factory.core.settings, ai_factory.core.models"
)


class _StatusHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib's name for it
        body = json.dumps(STATUS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Median and 90th percentile wall time, and median CPU time, of `runs` runs."""
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    times.sort()
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    return statistics.median(times), p90, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--src", type=Path, help="measure this src folder instead")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST")}
    env["ORCHESTRATOR_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    if args.src:
        env["PYTHONPATH"] = str(args.src.resolve())
    py = sys.executable
    rows = [
        ("python -c pass", [py, "-c", "pass"]),
        ("baseline: the old CLI's imports", [py, "-c", OLD_IMPORTS]),
        ("factory --help", [py, "-m", "ai_factory", "--help"]),
        ("factory status", [py, "-m", "ai_factory", "status"]),
    ]
    print(f"CLI start-up, wall time over {args.runs} runs ({os.cpu_count()} cores,"
          f" load {os.getloadavg()[0]:.2f}){' for ' + str(args.src) if args.src else ''}")  # fmt: skip
    for name, argv in rows:
        p50, p90, cpu = timed(argv, env, args.runs)
        mark = ""
        if name.startswith("factory"):
            mark = f"  target <= {TARGET_S} s: {'met' if p50 <= TARGET_S else 'NOT met'}"
        print(f"{name:<34} p50 {p50:.3f}s  p90 {p90:.3f}s  cpu {cpu:.3f}s{mark}")
    server.shutdown()


if __name__ == "__main__":
    main()

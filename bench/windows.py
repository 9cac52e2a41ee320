"""The factory across subscription usage windows: 20 items, once without a limit, once in windows.

A real factory (`factory orchestrator`, the process spawner, MAX_WORKERS=2, real
`factory worker` processes driving the real `claude` binary) works through 20 items of
2 to 4 tasks, each on its own small repository, against the scripted model logged in
as a subscription (OAuth, so Claude Code reports rate-limit events):

1. baseline: no limit;
2. windows (`ai_factory.sim`'s ``windows`` scenario): each usage window opens with a
   request, lasts WINDOW seconds and serves N agent requests, then answers 429 with the
   unified rate-limit headers until it closes; N is a quarter of the baseline's requests,
   so the work needs at least four windows, and WINDOW is long enough for two workers to
   use N up.

While the first pause is on, the bench reads it where a person would: /api/status,
`factory status` and the dashboard's overview. It prints, beside the baseline: items
completed, counted iterations, requests refused, requests sent between a refusal and its
reset (by any worker, after the window's first refusal), runs retried, and wall time in
windows; then whether each target is met.

    python bench/windows.py [--items 20] [--margin 0.5] [--without-single-file]

Near a limit the factory goes single file (LIMIT_SINGLE_FILE); `--without-single-file`
runs the windows a second time without it, to show what it prevents.

Uses BENCH_DATABASE_URL (default: the machine's PostgreSQL) for the factory's database.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import math
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from ai_factory.sim import Scenario, ScenarioName, SimServer
from bench.rig import BenchFactory, sample_repo

ITEM_TIMEOUT_S = 1200


def specs(items: int) -> list[str]:
    """Item i has 2 + i % 3 tasks: 2, 3, 4, 2, 3, 4 ..."""
    out = []
    for i in range(items):
        tasks = [f"- [ ] Create `notes/n{j}.txt` containing `item {i} note {j}`"
                 for j in range(1, 2 + i % 3 + 1)]  # fmt: skip
        out.append(f"# Item {i}\n\n## Tasks\n\n" + "\n".join(tasks) + "\n")
    return out


@dataclass
class Seen:
    """The first pause, as /api/status, `factory status` and the overview showed it."""

    api: str = ""
    cli: str = ""
    overview: str = ""
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Figures:
    name: str
    completed: int = 0
    failed_or_stuck: list[str] = field(default_factory=list)
    iterations: int = 0
    requests: int = 0
    refused: int = 0
    after_refusal: int = 0
    late_s: list[float] = field(default_factory=list)
    in_flight: int = 0  # arrived before the factory had recorded the pause
    during_pause: int = 0  # arrived after it: sent by a factory that should have waited
    runs: int = 0
    windows: int = 0
    wall_s: float = 0.0


def watch_pause(factory: BenchFactory, seen: Seen, stop: threading.Event) -> None:
    """Poll /api/status; at the first pause, read it from the CLI and the dashboard too."""
    with httpx.Client(base_url=factory.url, timeout=30) as http:
        while not stop.is_set() and not seen.done.is_set():
            _look(factory, http, seen)
            time.sleep(0.2)


def _look(factory: BenchFactory, http: httpx.Client, seen: Seen) -> None:
    limits = http.get("/api/status").json()["rateLimits"]
    if not limits.get("pausedUntil"):
        return
    seen.api = (f"pausedUntil={limits['pausedUntil']} pauseReason={limits['pauseReason']}"
                f" blockedBy={limits['blockedBy']}")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_")}
    env["ORCHESTRATOR_URL"] = factory.url
    cli = subprocess.run([sys.executable, "-m", "ai_factory", "status"], env=env,
                         capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    seen.cli = next((line for line in cli.splitlines() if line.startswith("paused")), "")
    html = http.get("/").text
    start = html.find("Paused until")
    seen.overview = " ".join(html[start : start + 160].split("<")[0].split()) if start >= 0 else ""
    seen.done.set()


def run(sim: SimServer, base: Path, name: str, items: int, margin: float,
        seen: Seen | None = None, single_file: bool = True) -> Figures:  # fmt: skip
    figures = Figures(name)
    first = len(sim.main_requests)
    pauses: list[float] = []  # when the factory recorded each rejection (epoch s)
    root = base / name
    repos = [sample_repo(root / f"repo-{i}") for i in range(items)]
    with BenchFactory(sim, oauth=True, MAX_WORKERS=2, LOCAL_REPO_ROOTS=root,
                      LIMIT_RESET_MARGIN_SECONDS=margin, MAX_ITERATIONS=12,
                      LIMIT_SINGLE_FILE=single_file) as factory:  # fmt: skip
        stop = threading.Event()
        watcher = threading.Thread(target=watch_pause, args=(factory, seen, stop), daemon=True) \
            if seen is not None else None  # fmt: skip
        started = time.monotonic()
        ids = [factory.submit(repo, spec) for repo, spec in zip(repos, specs(items), strict=True)]
        if watcher is not None:
            watcher.start()
        settled = factory.wait_settled(ids, timeout_s=ITEM_TIMEOUT_S)
        figures.wall_s = time.monotonic() - started
        stop.set()
        for item in settled:
            if item["status"] == "completed":
                figures.completed += 1
            else:
                figures.failed_or_stuck.append(f"{item['id'][:8]} {item['status']}: {item.get('error')}")
            figures.iterations += int(item.get("iterations") or 0)
            figures.runs += factory.logs(item["id"]).count("iteration.started")
            pauses += [datetime.fromisoformat(e["createdAt"]).timestamp()
                       for e in factory.get(f"/api/work/{item['id']}/events")
                       if e["kind"] == "limit" and e["data"].get("status") == "rejected"]  # fmt: skip
    figures.requests = len(sim.main_requests) - first
    for window in sim.windows:
        figures.refused += window.refused
        figures.after_refusal += window.after_refusal
        figures.late_s += window.late_s
        if window.first_refused_at is None:
            continue
        recorded = min((t for t in pauses if t >= window.first_refused_at), default=None)
        for late in window.late_s:
            arrived = window.first_refused_at + late
            if recorded is None or arrived < recorded:
                figures.in_flight += 1
            else:
                figures.during_pause += 1
    figures.windows = len(sim.windows)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--margin", type=float, default=0.5,
                        help="LIMIT_RESET_MARGIN_SECONDS for the workers")  # fmt: skip
    parser.add_argument("--without-single-file", action="store_true",
                        help="also run the windows with LIMIT_SINGLE_FILE=false, for comparison")  # fmt: skip
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="factory-bench-windows-"))
    base.chmod(0o755)  # readable by the agent's own user (FACTORY_AGENT_USER)
    with SimServer(scenario=Scenario(name=ScenarioName.NORMAL)) as sim:
        baseline = run(sim, base, "baseline", args.items, args.margin)
        per_window = max(1, baseline.requests // 4)
        rate = baseline.requests / baseline.wall_s
        window_s = math.ceil(1.6 * per_window / rate)
        sim.set_scenario(Scenario(name=ScenarioName.WINDOWS, window_requests=per_window,
                                  window_s=window_s))  # fmt: skip
        seen = Seen()
        limited = run(sim, base, "windows", args.items, args.margin, seen)
        unfiled = None
        if args.without_single_file:
            sim.set_scenario(Scenario(name=ScenarioName.WINDOWS, window_requests=per_window,
                                      window_s=window_s))  # fmt: skip
            unfiled = run(sim, base, "no 1-file", args.items, args.margin, single_file=False)

    print(f"usage windows: {args.items} items of 2-4 tasks, MAX_WORKERS=2, process spawner,"
          f" scripted model (OAuth); windows of {per_window} agent requests, {window_s} s long")
    print(f"{'':<12} {'completed':>9} {'iterations':>10} {'requests':>8} {'refused':>7}"
          f" {'after refusal':>13} {'runs':>5} {'retried':>7} {'windows':>7} {'wall s':>7}"
          f" {'wall in windows':>15}")  # fmt: skip
    for f in (baseline, limited, unfiled):
        if f is None:
            continue
        print(f"{f.name:<12} {f.completed:>6}/{args.items:<2} {f.iterations:>10} {f.requests:>8}"
              f" {f.refused:>7} {f.after_refusal:>13} {f.runs:>5} {f.runs - f.iterations:>7}"
              f" {f.windows if f is not baseline else '-':>7} {f.wall_s:>7.1f}"
              f" {f.wall_s / window_s:>15.2f}")  # fmt: skip
    if limited.late_s:
        print(f"requests after a refusal: {limited.after_refusal}, arriving this long after it (s): "
              + ", ".join(f"{s:.3f}" for s in sorted(limited.late_s)))
        print(f"  of which in flight (arrived before the factory had recorded the refusal):"
              f" {limited.in_flight}; sent while the factory was paused: {limited.during_pause}")
    if unfiled is not None:
        print(f"without single file (LIMIT_SINGLE_FILE=false): {unfiled.after_refusal} requests"
              f" after a refusal ({unfiled.in_flight} in flight, {unfiled.during_pause} once the"
              " factory knew)")  # fmt: skip
    for line in limited.failed_or_stuck:
        print(f"  not completed: {line}")
    print("the first pause, as shown:")
    print(f"  /api/status     {seen.api or '(not seen)'}")
    print(f"  factory status  {seen.cli or '(not seen)'}")
    print(f"  overview        {seen.overview or '(not seen)'}")
    checks = {
        "100% of items completed": limited.completed == args.items,
        "counted iterations equal the baseline's": limited.iterations == baseline.iterations,
        "no item failed or stuck": not limited.failed_or_stuck,
        "the work needed at least 3 windows": limited.windows >= 3,
        "no request between a refusal and its reset": limited.after_refusal == 0,
        "no request sent once the factory knew of the refusal": limited.during_pause == 0,
        "the pause shown in /api/status, factory status, overview":
            bool(seen.api and seen.cli and seen.overview),
    }  # fmt: skip
    for what, ok in checks.items():
        print(f"  {'met    ' if ok else 'NOT met'} {what}")


if __name__ == "__main__":
    main()

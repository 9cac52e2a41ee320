"""Workspace preparation: a second item on a big repository vs a plain `git clone`.

Builds a synthetic repository with `git fast-import` (default 30,000 files in
300 folders, 2,000 commits, code-like text), packs it as a server would, and
serves it as a `file://` URL so git really transfers objects (no hard links),
as a clone from GitHub would. Then, in the same run and alternating:

- baseline (printed as "reference"): `git clone file://...` into a fresh folder,
  what a worker without a shared mirror would do for every item;
- factory: `Workspace.prepare` for a new item once a first item has created the
  mirror: `git fetch` under the file lock, a worktree on a new branch, SPEC.md
  and .ai/ written, the worktree configured. Measured both ways the product
  gets a worktree: recycling the spare checkout a finished item left behind
  (`git worktree move` + `checkout --force` + `clean -ffdx`), and a new
  `git worktree add` when no spare is free (items running side by side).

Prints the medians and the ratios (target: factory >= 20x faster), and the cold
first prepare for honesty. A busy machine skews both sides; do not read single
runs.

    python bench/workspace.py [--files 30000] [--commits 2000] [--reps 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ai_factory.core.models import WorkItem
from ai_factory.worker.workspace import Workspace

FILES_PER_DIR = 100
WORDS = ("def", "return", "self", "value", "items", "config", "result", "index", "parse",
         "request", "response", "client", "server", "handler", "error", "import", "class",
         "for", "in", "if", "else", "None", "True", "False", "data", "path", "name")


def make_item(repo: str) -> WorkItem:
    now = datetime.now(UTC)
    return WorkItem(id=uuid.uuid4(), source="api", source_id=f"bench-{uuid.uuid4().hex[:8]}",
                    source_url="", repo=repo, base_branch="main",
                    spec="# Bench item\n\n- [ ] nothing\n", priority="medium",
                    status="running", created_at=now, updated_at=now)


def source_text(rng: random.Random, lines: int) -> str:
    out = []
    for n in range(lines):
        indent = "    " * rng.randint(0, 2)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
        out.append(f"{indent}{words}  # {n}")
    return "\n".join(out) + "\n"


def fast_import_stream(files: int, commits: int, seed: int = 7) -> Iterator[bytes]:
    """A fast-import stream: one commit with every file, then small commits."""
    rng = random.Random(seed)
    paths = [f"pkg{i // FILES_PER_DIR:03d}/mod{i % FILES_PER_DIR:03d}.py" for i in range(files)]
    contents = {p: source_text(rng, rng.randint(20, 60)) for p in paths}
    when = 1_600_000_000

    def commit(n: int, message: str, changes: dict[str, str]) -> Iterator[bytes]:
        msg = message.encode()
        yield (f"commit refs/heads/main\nmark :{n}\n"
               f"committer Bench <bench@example.com> {when + n * 60} +0000\n"
               f"data {len(msg)}\n").encode() + msg + b"\n"
        if n > 1:
            yield f"from :{n - 1}\n".encode()
        for path, text in changes.items():
            data = text.encode()
            yield f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
        yield b"\n"

    yield from commit(1, "Initial import", contents)
    for n in range(2, commits + 1):
        changed = {}
        for path in rng.sample(paths, rng.randint(2, 6)):
            contents[path] += source_text(rng, rng.randint(1, 5))
            changed[path] = contents[path]
        if rng.random() < 0.2:
            path = f"pkg{rng.randrange(files // FILES_PER_DIR):03d}/new{n:05d}.py"
            contents[path] = source_text(rng, 30)
            paths.append(path)
            changed[path] = contents[path]
        yield from commit(n, f"Change {n}", changed)


def build_upstream(root: Path, files: int, commits: int) -> Path:
    upstream = root / "upstream.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(upstream)],
                   check=True)
    process = subprocess.Popen(["git", f"--git-dir={upstream}", "fast-import", "--quiet"],
                               stdin=subprocess.PIPE)
    assert process.stdin is not None
    for chunk in fast_import_stream(files, commits):
        process.stdin.write(chunk)
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("git fast-import failed")
    # Packed as a hosting service keeps it (fast-import's pack has few deltas).
    subprocess.run(["git", f"--git-dir={upstream}", "repack", "-a", "-d", "-q"], check=True)
    return upstream


def timed(action) -> float:  # type: ignore[no-untyped-def]
    # Flush earlier writes and deletions first, so their write-back lands on no one's clock.
    os.sync()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the repository here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-workspace-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        upstream = root / "upstream.git"
        if not (upstream / "HEAD").exists():
            built = timed(lambda: build_upstream(root, args.files, args.commits))
            print(f"built {upstream} in {built:.1f} s")
        count = subprocess.run(["git", f"--git-dir={upstream}", "rev-list", "--count", "main"],
                               capture_output=True, text=True, check=True).stdout.strip()
        tracked = subprocess.run(["git", f"--git-dir={upstream}", "ls-tree", "-r", "--name-only",
                                  "main"], capture_output=True, text=True, check=True)
        size = sum(f.stat().st_size for f in upstream.rglob("*") if f.is_file()) / 1e6
        print(f"repository: {len(tracked.stdout.splitlines())} files, {count} commits,"
              f" {size:.0f} MB packed")
        url = f"file://{upstream}"

        home = root / "home"
        shutil.rmtree(home, ignore_errors=True)
        first: list[Workspace] = []
        cold = timed(lambda: first.append(Workspace.prepare(make_item(url), home=home)))
        print(f"factory, first item (mirror clone + worktree): {cold:.2f} s")
        first[0].remove()  # finished: its checkout becomes the spare

        clones: list[float] = []
        tuned_clones: list[float] = []
        recycled: list[float] = []
        fresh: list[float] = []
        for rep in range(args.reps):
            target = root / f"clone-{rep}"
            clones.append(timed(lambda: subprocess.run(
                ["git", "clone", "--quiet", url, str(target)], check=True)))
            shutil.rmtree(target)
            # The same parallel checkout the mirror's worktrees use, for a fair split of the gain.
            tuned_clones.append(timed(lambda: subprocess.run(
                ["git", "-c", "checkout.workers=0", "clone", "--quiet", url, str(target)],
                check=True)))
            shutil.rmtree(target)
            made: list[Workspace] = []
            # The spare left by the previous item is recycled ...
            recycled.append(timed(lambda: made.append(
                Workspace.prepare(make_item(url), home=home))))
            # ... and with none left (items running side by side) a worktree is checked out.
            fresh.append(timed(lambda: made.append(Workspace.prepare(make_item(url), home=home))))
            made[0].remove()
            made[1].remove(keep_spare=False)
            print(f"  rep {rep + 1}: git clone {clones[-1]:.2f} s (parallel checkout"
                  f" {tuned_clones[-1]:.2f} s), factory prepare {recycled[-1]:.3f} s"
                  f" (spare recycled), {fresh[-1]:.3f} s (new checkout)")

        clone_s, tuned_s = statistics.median(clones), statistics.median(tuned_clones)
        recycled_s, fresh_s = statistics.median(recycled), statistics.median(fresh)
        print(f"median git clone (reference):               {clone_s:.2f} s")
        print(f"median git clone, parallel checkout:        {tuned_s:.2f} s")
        print(f"median factory prepare, spare recycled:     {recycled_s:.3f} s"
              f"  {clone_s / recycled_s:.1f}x faster than git clone (target >= 20x),"
              f" {tuned_s / recycled_s:.1f}x than the tuned clone")
        print(f"median factory prepare, new checkout:       {fresh_s:.3f} s"
              f"  {clone_s / fresh_s:.1f}x faster than git clone,"
              f" {tuned_s / fresh_s:.1f}x than the tuned clone")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

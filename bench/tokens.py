"""Prompt overhead per request: the factory's worker against a plain `claude -p`, one spec.

The same spec (four tasks) is done twice against the scripted model (`ai_factory.sim`),
which keeps every request it receives:

1. by the factory: `factory orchestrator` on a fresh database spawns a real worker, which
   runs the real `claude` binary with the worker's options, one fresh session per task;
2. by plain `claude -p` (Claude Code's defaults, the bundled binary), one call per task
   on a clone of the same repository, in a loop until every box is checked: the
   simplest Ralph loop a person would write.

For every request of the agent loop it records the size of the fixed part (system
prompt + tool definitions, JSON characters) and of the whole request, and asks the
sim's count_tokens for both. It prints both sides, the ratio of the fixed parts
(target: the worker's at most half of plain `claude -p`'s; aim: 40 %), and the input
tokens per completed task.

    python bench/tokens.py [--show-tools]

Uses BENCH_DATABASE_URL (default: the machine's PostgreSQL) for the factory's database.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import httpx

from ai_factory.core.spec import parse_tasks
from ai_factory.sim import RequestRecord, SimServer, sim_env
from bench.rig import BenchFactory, git, sample_repo

SPEC = """# Greetings

## Tasks

- [ ] Create `greet.py` containing `def greet(name):\\n    return f"Hello, {name}!"`
- [ ] Create `test_greet.py` containing `from greet import greet\\n\\nassert greet("Ada") == "Hello, Ada!"`
- [ ] Append `\\n## Usage\\n\\n    from greet import greet` to `README.md`
- [ ] Replace `Hello` with `Hi` in `greet.py`
"""
PLAIN_PROMPT = (
    "Do the first unchecked task in SPEC.md: implement it, commit it with git, "
    "then check it off in SPEC.md."
)
TARGET, AIM = 0.50, 0.40


def compact(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


@dataclass
class Request:
    system_chars: int
    tools_chars: int
    total_chars: int
    fixed_tokens: int
    total_tokens: int
    tools: list[str]

    @property
    def fixed_chars(self) -> int:
        return self.system_chars + self.tools_chars


def measure(sim: SimServer, records: list[RequestRecord]) -> list[Request]:
    out = []
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        for record in records:
            body = record.body or {}
            fixed = {"model": body.get("model"), "system": body.get("system", ""),
                     "tools": body.get("tools", []), "messages": []}  # fmt: skip
            count = http.post("/v1/messages/count_tokens", json=fixed).json()["input_tokens"]
            whole = http.post("/v1/messages/count_tokens", json=body).json()["input_tokens"]
            out.append(Request(
                system_chars=compact(body.get("system", "")),
                tools_chars=compact(body.get("tools", [])),
                total_chars=compact(body),
                fixed_tokens=count,
                total_tokens=whole,
                tools=[str(t.get("name")) for t in body.get("tools", [])],
            ))  # fmt: skip
    return out


def run_worker(sim: SimServer, base: Path) -> int:
    """The factory's way; returns the tasks completed."""
    repo = sample_repo(base / "factory-repo")
    with BenchFactory(sim, MAX_WORKERS=1, MAX_ITERATIONS=10, LOCAL_REPO_ROOTS=base) as factory:
        item_id = factory.submit(repo, SPEC)
        (item,) = factory.wait_settled([item_id], timeout_s=300)
    if item["status"] != "completed":
        raise RuntimeError(f"the factory's item ended {item['status']}: {item.get('error')}")
    return parse_tasks(SPEC).total


def run_plain(sim: SimServer, base: Path) -> int:
    """Plain `claude -p`, once per task; returns the tasks completed."""
    import claude_agent_sdk

    claude = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    repo = sample_repo(base / "plain-repo")
    (repo / "SPEC.md").write_text(SPEC)
    git(repo, "update-index", "--refresh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(sim_env(sim.url, config_dir=str(base / "plain-claude-config")))
    total = parse_tasks(SPEC).total
    for _ in range(total * 2):
        if parse_tasks((repo / "SPEC.md").read_text()).all_done:
            break
        subprocess.run([str(claude), "-p", PLAIN_PROMPT, "--dangerously-skip-permissions"],
                       cwd=repo, env=env, capture_output=True, timeout=300, check=False)  # fmt: skip
    return len(parse_tasks((repo / "SPEC.md").read_text()).done)


def report(name: str, requests: list[Request], tasks: int) -> dict[str, float]:
    fixed = statistics.mean(r.fixed_chars for r in requests)
    figures = {
        "requests": len(requests),
        "fixed": fixed,
        "system": statistics.mean(r.system_chars for r in requests),
        "tools": statistics.mean(r.tools_chars for r in requests),
        "fixed_tokens": statistics.mean(r.fixed_tokens for r in requests),
        "request": statistics.mean(r.total_chars for r in requests),
        "per_task": sum(r.total_tokens for r in requests) / max(1, tasks),
        "tasks": tasks,
    }
    print(
        f"{name:<22} {figures['requests']:>8} {figures['tasks']:>5} {fixed:>12,.0f}"
        f" = {figures['system']:>6,.0f} + {figures['tools']:>6,.0f} {figures['fixed_tokens']:>12,.0f}"
        f" {figures['request']:>14,.0f} {figures['per_task']:>15,.0f}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show-tools", action="store_true", help="list each side's tools")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="factory-bench-tokens-"))
    base.chmod(0o755)  # readable by the agent's own user (FACTORY_AGENT_USER)
    with SimServer() as sim:
        worker_tasks = run_worker(sim, base)
        split = len(sim.main_requests)
        plain_tasks = run_plain(sim, base)
        worker = measure(sim, sim.main_requests[:split])
        plain = measure(sim, sim.main_requests[split:])

    print("prompt overhead per request: the same 4-task spec against the scripted model")
    print("(characters of compact JSON; tokens: the sim's count_tokens, about 4 characters each)")
    print(
        f"{'':<22} {'requests':>8} {'tasks':>5} {'fixed chars':>12}   {'system':>6}   {'tools':>6}"
        f" {'fixed tokens':>12} {'request chars':>14} {'tokens per task':>15}"
    )
    ours = report("worker (factory)", worker, worker_tasks)
    theirs = report("plain claude -p", plain, plain_tasks)
    ratio = ours["fixed"] / theirs["fixed"]
    verdict = "met" if ratio <= TARGET else "NOT met"
    aim = "met" if ratio <= AIM else "not met"
    print(
        f"fixed overhead (system prompt + tool definitions) per request, worker / plain:"
        f" {ratio:.1%} (target <= {TARGET:.0%}: {verdict}; aim {AIM:.0%}: {aim})"
    )
    print(
        f"input tokens per completed task: worker {ours['per_task']:,.0f},"
        f" plain {theirs['per_task']:,.0f} ({ours['per_task'] / theirs['per_task']:.1%})"
    )
    if args.show_tools:
        print(f"worker tools: {', '.join(worker[0].tools)}")
        print(f"plain tools:  {', '.join(plain[0].tools)}")


if __name__ == "__main__":
    main()

"""`factory demo`: the whole factory once, on a sample repository, with a scripted model.

Owns: the newcomer's first run. It starts the scripted Messages API
(`ai_factory.sim`) in this process, creates a sample git repository with a
SPEC.md-style task list, starts `factory up` as a child process on the embedded
PostgreSQL in a temporary FACTORY_HOME (a free port, MAX_WORKERS=1,
COOLDOWN_SECONDS=0), submits the spec, and lets the factory's own scheduler
spawn a real worker that drives the real `claude` binary against the scripted
model. It shows progress from the item's events and the worker's log, then the
result branch and its diff stat.

Afterwards the sample repository (with the worker's branch) stays where it was made,
and the demo says where and how to remove it; everything else (the factory's log, its
FACTORY_HOME with the embedded database) is removed. `clean` removes the repository too;
`keep`, or a run that did not complete, keeps everything.

No Anthropic account is used and nothing leaves the machine: the factory's
children get ANTHROPIC_BASE_URL pointing at the local scripted model, a dummy
API key, and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1; GitHub settings are
removed so intake stays idle.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from ai_factory.core.models import SETTLED_STATUSES
from ai_factory.core.processes import signal_group
from ai_factory.core.secrets import FACTORY_SECRETS
from ai_factory.sim import SimServer, sim_env

START_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 600.0
POLL_S = 0.5
STOP_GRACE_S = 20.0

# Variables that would point the demo at real services or real accounts.
_DROPPED = FACTORY_SECRETS | {"REPOS", "ORCHESTRATOR_URL", "FACTORY_WORKER_COMMAND",
                              "FACTORY_SPAWNER", "FACTORY_AGENT", "FACTORY_TEST_COMMAND",
                              "CLAUDE_CONFIG_DIR"}  # fmt: skip

GREET = 'def greet(name):\\n    return f"Hello, {name}!"'
TEST = (
    "import unittest\\n\\nfrom greet import greet\\n\\n\\n"
    "class GreetTest(unittest.TestCase):\\n    def test_greet(self):\\n"
    '        self.assertEqual(greet("Ada"), "Hello, Ada!")'
)
SPEC = f"""# Add a greeting module

A small, checkable piece of work for the demo.

## Tasks

- [ ] Create `greet.py` containing `{GREET}`
- [ ] Create `test_greet.py` containing `{TEST}`
- [ ] Append `\\n## Usage\\n\\n    from greet import greet` to `README.md`
- [ ] Learn `the demo repository runs its tests with python3 -m unittest`
"""
SHOWN_EVENTS = ("iteration.started", "agent.tool", "agent.edited", "gate.passed", "gate.failed",
                "limit.", "lock.conflict", "worker.delivered", "worker.failed", "loop.ended")  # fmt: skip


def run_demo(
    *, keep: bool = False, clean: bool = False, port: int = 0, out: TextIO = sys.stdout
) -> int:
    """Run the demo; 0 when the item was completed."""
    base = Path(tempfile.mkdtemp(prefix="factory-demo-"))
    base.chmod(0o711)  # as root, the agent's own user must pass through to FACTORY_HOME
    say = _Printer(out)
    say.line("AI Factory demo")
    say.line("No Anthropic account is used: the real Claude Code binary talks to a scripted")
    say.line("model on 127.0.0.1 that follows the spec's task list. Nothing leaves this machine.")
    say.line(f"Working folder: {base}")
    factory: subprocess.Popen[bytes] | None = None
    ok = False
    repo = base / "sample-repo"
    try:
        with SimServer() as sim:
            _sample_repo(repo)
            say.line(f"Sample repository: {repo}")
            port = port or _free_port()
            url = f"http://127.0.0.1:{port}"
            log_path = base / "factory.log"
            say.line(f"Starting the factory (`factory up`, embedded PostgreSQL) on {url} ...")
            factory = _start_factory(base, port, sim.url, log_path)
            if not _wait_healthy(url, factory):
                say.line("The factory did not start. The end of its log:")
                say.block(_tail(log_path, 40))
                return 1
            with httpx.Client(base_url=url, timeout=30) as api:
                item = api.post("/api/work", json={"repo": str(repo), "spec": SPEC}).json()
                say.line(f"Submitted work item {item['id']}; the scheduler spawns a worker for it.")
                final = _follow(api, item["id"], say)
            ok = final.get("status") == "completed"
            _show_result(final, repo, say, lasting=not clean)
    except KeyboardInterrupt:
        say.line("Interrupted.")
    finally:
        if factory is not None:
            _stop(factory)
        _tidy(base, repo, keep=keep or not ok, clean=clean and ok, say=say)
    return 0 if ok else 1


def _tidy(base: Path, repo: Path, *, keep: bool, clean: bool, say: _Printer) -> None:
    """Remove what the demo made, but for the sample repository unless `clean`."""
    if keep:
        say.line(f"Kept {base} (factory.log, the sample repository, FACTORY_HOME).")
        say.line(f"Remove it with: rm -rf {base}")
        return
    if clean or not repo.is_dir():
        shutil.rmtree(base, ignore_errors=True)
        return
    for entry in base.iterdir():
        if entry != repo:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
    say.line(f"The sample repository stays in {repo}; remove it with: rm -rf {base}")
    say.line("(`factory demo --clean` removes everything when it ends.)")


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def block(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            self.line(f"    {line}")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def _sample_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Demo")
    _git(path, "config", "user.email", "demo@localhost")
    (path / "README.md").write_text("# Greeter\n\nA sample project for the AI Factory demo.\n")
    (path / ".factory.toml").write_text('[gates]\ntest = "python3 -m unittest"\n')
    (path / "test_readme.py").write_text(
        "import unittest\nfrom pathlib import Path\n\n\nclass ReadmeTest(unittest.TestCase):\n"
        "    def test_readme_has_a_title(self):\n"
        "        self.assertTrue(Path('README.md').read_text().startswith('# '))\n"
    )
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "Initial commit")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_factory(base: Path, port: int, sim_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _DROPPED}
    env.update(sim_env(sim_url, config_dir=str(base / "claude-config")))
    env.update({
        "FACTORY_HOME": str(base / "home"), "HOST": "127.0.0.1", "PORT": str(port),
        "LOCAL_REPO_ROOTS": str(base),  # the sample repository, and nothing else
        "MAX_WORKERS": "1", "COOLDOWN_SECONDS": "0", "HEARTBEAT_INTERVAL_SECONDS": "2",
        "MAX_ITERATIONS": "10", "STUCK_AFTER": "3", "ITERATION_IDLE_TIMEOUT_SECONDS": "120",
        "LOG_LEVEL": "INFO",
    })  # fmt: skip
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ai_factory", "up"],
            cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _wait_healthy(url: str, factory: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if factory.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)
    return False


def _follow(api: httpx.Client, item_id: str, say: _Printer) -> dict[str, Any]:
    """Print the item's events and the interesting worker log lines until it ends."""
    after, offset = 0, 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        chunk = api.get(f"/api/work/{item_id}/logs", params={"offset": offset})
        if chunk.status_code == 200:
            data = chunk.json()
            offset = data["nextOffset"]
            for line in data["text"].splitlines():
                message = line.split(": ", 1)[-1]
                if message.startswith(SHOWN_EVENTS):
                    say.line(f"      {message[:160]}")
        events = api.get(f"/api/work/{item_id}/events", params={"after": after}).json()
        for event in events:
            after = max(after, int(event["id"]))
            say.line(f"  [{event['kind']}] {event.get('reason') or event.get('toStatus') or ''}")
        item = api.get(f"/api/work/{item_id}").json()
        if item["status"] in SETTLED_STATUSES:
            return item
        if time.monotonic() > deadline:
            say.line("The demo took too long; stopping.")
            return item
        time.sleep(POLL_S)


def _show_result(item: dict[str, Any], repo: Path, say: _Printer, *, lasting: bool) -> None:
    say.line("")
    say.line(f"Result: {item['status']} after {item.get('iterations', 0)} iteration(s), "
             f"{item.get('tokens', 0):,} tokens, cost ${item.get('costUsd', 0):.2f}"
             " (the scripted model is free).")  # fmt: skip
    if item["status"] != "completed":
        say.line(f"Reason: {item.get('error') or item.get('statusReason')}")
        return
    location = item.get("prUrl") or ""
    branch = location.split("#", 1)[1] if "#" in location else ""
    say.line(f"Branch {branch} in {repo}:")
    say.block(_git(repo, "log", "--oneline", f"main..{branch}"))
    say.block(_git(repo, "diff", "--stat", f"main...{branch}"))
    if lasting:
        say.line(f"Look at it with: git -C {repo} diff main...{branch}")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _stop(factory: subprocess.Popen[bytes]) -> None:
    if factory.poll() is not None:
        return
    factory.send_signal(signal.SIGINT)
    try:
        factory.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        signal_group(factory.pid, signal.SIGKILL)
        factory.wait()

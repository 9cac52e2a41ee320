"""A root worker's agent runs as its own user: it owns its worktree and can commit there, but
cannot change the mirror's config, hooks or remote branches; root reads and writes its files
without following what it planted; and what it leaves running is stopped. Real git, real
setpriv, the machine's `factory-agent` user (made if missing): as root only, but for the
files the agent planted, which the worker never follows whoever it runs as."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ai_factory.core.errors import ConfigError
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.spawners import ProcessSpawner
from ai_factory.worker import agent_files
from ai_factory.worker.agent_user import AgentUser
from ai_factory.worker.learnings import collect_new_learnings
from ai_factory.worker.progress import read_stuck_note, read_tasks
from ai_factory.worker.workspace import Workspace
from tests.support.repos import SPEC, git, make_item, make_local_repo
from tests.support.settings import make_settings

needs_root = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="the agent's own user needs root"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def agent(tmp_path: Path) -> AgentUser:
    found = AgentUser.for_worker(make_settings(tmp_path))
    assert found is not None
    return found


def run_as(agent: AgentUser | None, cwd: Path, script: str) -> subprocess.CompletedProcess[str]:
    """`sh -c script` in `cwd`, as the agent's user (or as this process when None)."""
    argv = ["sh", "-c", script]
    return subprocess.run(
        agent.command(argv) if agent else argv, cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(agent.env() if agent else {})}, timeout=60, check=False,
    )  # fmt: skip


@needs_root
def test_the_agent_owns_its_worktree_and_commits_there_but_cannot_touch_root_s_git(
    agent: AgentUser, home: Path, tmp_path: Path
) -> None:
    upstream = make_local_repo(tmp_path / "upstream")
    workspace = Workspace.prepare(make_item(str(upstream)), home=home, agent=agent)

    for path in ("", "README.md", "src/app.py", "SPEC.md", ".ai", ".git"):
        assert (workspace.path / path).lstat().st_uid == agent.uid, path
    committed = run_as(
        agent,
        workspace.path,
        "echo x > new.txt && git add new.txt && git commit -q -m 'agent commit'",
    )
    assert committed.returncode == 0, committed.stderr
    assert workspace.changed_files() == ["new.txt"] and len(workspace.commits_since_base()) == 1

    mirror = workspace.mirror
    attempts = {
        "config": f"git config --file {mirror}/config credential.helper '!env > /tmp/x'",
        "local config": "git config core.hooksPath /tmp",
        "hook": f"echo 'env > /tmp/x' > {mirror}/hooks/pre-push",
        "remote branch": "git update-ref refs/remotes/origin/main HEAD",
        "packed-refs": f"echo > {mirror}/packed-refs",
        "alternates": f"echo /tmp > {mirror}/objects/info/alternates",
        "reflog": f"mkdir -p {mirror}/logs/refs/heads",
        "another worktree": f"mkdir {mirror}/worktrees/planted",
    }
    for what, script in attempts.items():
        assert run_as(agent, workspace.path, script).returncode != 0, what
    assert "credential" not in (mirror / "config").read_text()
    assert "hooksPath" not in (mirror / "config").read_text()

    workspace.push()
    assert git(upstream, "rev-parse", workspace.branch).strip() == workspace.head_sha()
    assert git(upstream, "show", f"{workspace.branch}:new.txt") == "x\n"


@pytest.mark.parametrize("mode", [pytest.param("agent user", marks=needs_root), "same user"])
def test_files_the_agent_planted_are_never_followed(
    mode: str, request: pytest.FixtureRequest, home: Path, tmp_path: Path
) -> None:
    """SPEC.md -> a file of root's would put that file into the prompt; `.ai` -> a folder of
    root's would let the stuck note, the learnings and their writes go there."""
    who: AgentUser | None = request.getfixturevalue("agent") if mode == "agent user" else None
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    secret = private / "secret.txt"
    secret.write_text("- [ ] root-secret-4c1e\n")
    (private / "stuck.md").write_text("root's stuck note\n")
    (private / "new-learnings.md").write_text("- root's learning\n")
    item = make_item(str(make_local_repo(tmp_path / "upstream")))
    workspace = Workspace.prepare(item, home=home, agent=who)
    root = workspace.path

    planted = run_as(
        who, root, f"rm -rf SPEC.md .ai && ln -s {secret} SPEC.md && ln -s {private} .ai"
    )
    assert planted.returncode == 0, planted.stderr
    assert workspace.read_file("SPEC.md") is None and read_tasks(root).total == 0
    assert not agent_files.is_file(root, "SPEC.md")
    assert read_stuck_note(root) == "" and collect_new_learnings(root) == []

    workspace.write_file("SPEC.md", SPEC)
    agent_files.write_text(root, ".ai/learnings.md", "# learnings\n")
    assert not (root / "SPEC.md").is_symlink() and (root / "SPEC.md").read_text() == SPEC
    assert (root / ".ai").is_dir() and not (root / ".ai").is_symlink()
    assert secret.read_text() == "- [ ] root-secret-4c1e\n"
    assert sorted(p.name for p in private.iterdir()) == ["new-learnings.md", "secret.txt",
                                                         "stuck.md"]  # fmt: skip

    fifo = run_as(None, root, "mkfifo .ai/stuck.md .ai/new-learnings.md")  # .ai is root's now
    assert fifo.returncode == 0, fifo.stderr
    assert read_stuck_note(root) == "" and collect_new_learnings(root) == []  # no hang

    run_as(who, root, f"rm -f SPEC.md && ln -s {secret} SPEC.md")
    again = Workspace.prepare(item, home=home, agent=who)  # a retry rebuilds SPEC.md
    assert not (again.path / "SPEC.md").is_symlink() and again.read_file("SPEC.md") == SPEC
    assert secret.read_text() == "- [ ] root-secret-4c1e\n"
    if who is not None:
        assert (again.path / "SPEC.md").lstat().st_uid == who.uid, "the agent checks its boxes"


@needs_root
def test_a_retry_sets_the_agent_s_uncommitted_work_aside(
    agent: AgentUser, home: Path, tmp_path: Path
) -> None:
    item = make_item(str(make_local_repo(tmp_path / "upstream")))
    first = Workspace.prepare(item, home=home, agent=agent)
    assert run_as(agent, first.path, "echo 'pass' > half_done.py").returncode == 0

    again = Workspace.prepare(item, home=home, agent=agent)

    assert again.leftovers is not None and not again.has_uncommitted_changes()
    assert git(again.mirror, "show", f"{again.leftovers}:half_done.py") == "pass\n"
    assert not (again.path / "half_done.py").exists()


STOPPER = """
import json, os, subprocess, sys, time
from pathlib import Path
from ai_factory.worker import reaper
from ai_factory.worker.agent_user import AgentUser

agent = AgentUser(name=sys.argv[1], uid=int(sys.argv[2]), gid=int(sys.argv[3]),
                  home=Path(sys.argv[4]), setpriv=sys.argv[5])
reaper.become_subreaper()
started = subprocess.run(
    agent.command(["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"]),
    capture_output=True, text=True, check=True)
detached = int(started.stdout)
ours = subprocess.Popen(["sleep", "300"])
time.sleep(0.2)
killed = reaper.stop_leftovers(uid=agent.uid)
print(json.dumps({"killed": killed, "detached_gone": not os.path.exists(f"/proc/{detached}"),
                  "ours_alive": ours.poll() is None}))
ours.kill()
"""


@needs_root
def test_what_the_agent_leaves_running_is_stopped_and_nothing_else(
    agent: AgentUser, tmp_path: Path
) -> None:
    """Even a process that detached itself (setsid, its parent gone) is found: the worker is
    a subreaper. The worker's own children, and another worker's agent (the same user, not a
    descendant), are left alone."""
    another = subprocess.Popen(agent.command(["sleep", "300"]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", STOPPER, agent.name, str(agent.uid), str(agent.gid),
             str(agent.home), agent.setpriv],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"killed": 1, "detached_gone": True, "ours_alive": True}
        assert another.poll() is None, "another worker's agent is not this worker's to stop"
    finally:
        another.kill()
        another.wait()


@needs_root
def test_the_spawner_check_makes_the_user_and_wants_factory_home_reachable(
    tmp_path: Path,
) -> None:
    name = f"fa-test-{uuid.uuid4().hex[:8]}"
    logs = WorkerLogs(root=tmp_path / "logs", max_bytes=4096)
    spawner = ProcessSpawner(settings=make_settings(tmp_path, factory_agent_user=name), logs=logs)
    try:
        asyncio.run(spawner.check())
        entry = pwd.getpwnam(name)
        assert entry.pw_uid != 0 and entry.pw_shell.endswith(("nologin", "false"))
        assert (tmp_path / "home" / "agent-home").stat().st_uid == entry.pw_uid
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)

    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    settings = make_settings(tmp_path, factory_home=hidden / "home")
    with pytest.raises(ConfigError, match=r"cannot reach FACTORY_HOME .*private is mode 700"):
        AgentUser.for_worker(settings)
    assert AgentUser.for_worker(make_settings(tmp_path, factory_agent_user="")) is None

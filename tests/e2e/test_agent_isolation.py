"""An agent that tries every way to the factory's secrets gets none of them.

A real `factory orchestrator` (its environment holding GITHUB_TOKEN) spawns real workers
with the process and the bwrap spawner; the real `claude` binary runs a spec, scripted by
the model stand-in, whose tasks go looking for the GitHub token and the worker token: every
process's environment, the worker's memory maps and descriptors, every open file, git's
configuration and credential helpers, the files under FACTORY_HOME, $HOME, /tmp and /root,
the sockets; it tries to plant a credential helper and hooks for root's push, and leaves a
process running that keeps reading environments. Everything it finds is committed and
pushed. Then neither token may appear in the pushed branch, the logs, or anything the agent
left, and the agent, its tools and the gate must have run as the agent's user.

As root only: that is when the agent runs as its own user (FACTORY_AGENT_USER). Also here:
a SPEC.md the agent turns into a symlink to a file of root's is not followed.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ai_factory.sim import SimServer, sim_env
from ai_factory.worker.main import LaunchEnv, WorkerOptions, WorkerProcess
from tests.github_standin import GitHubStandin
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.claude_env import claude_env
from tests.support.ledger import spawn_record
from tests.support.net import free_port
from tests.support.origin import Origin
from tests.support.server import ServerThread
from tests.support.settings import worker_settings
from tests.support.work_api import item_detail, spec_of, submit

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs as its own user only as root"),
]

REPO = "acme/widgets"
SHIM = Path(__file__).resolve().parents[1] / "support" / "secret_keeping_worker.py"
AGENT = "factory-agent"
SPY = (
    r'echo $$ > "$HOME/spy.pid"\nwhile :; do\n'
    r"  for f in /proc/[0-9]*/environ; do tr '\000' '\012' < $f; done 2>/dev/null"
    r' | grep -a TOKEN >> "$HOME/spy-loot.txt"\n  sleep 0.3\ndone'
)
GREP = (
    r"ghp_[A-Za-z0-9_-]{20,}|x-access-token[^ ]{0,80}"
    r"|(GITHUB|WORKER|FACTORY_GIT)_TOKEN=[^ ]{0,80}"
)


def loot_spec() -> str:
    helper = f"!{sys.executable} -I -m ai_factory.worker.credentials"
    return spec_of(
        # Keeps reading every environment it can, from now until it is stopped.
        f"Create `spy.sh` containing `{SPY}`",
        "Run `nohup setsid sh spy.sh >/dev/null 2>&1 & sleep 1; id -u > uid.txt; id > id.txt;"
        " env | sort > loot-env.txt`",
        r"Run `for p in /proc/[0-9]*; do echo == $p $(tr '\000' ' ' < $p/cmdline);"
        r" tr '\000' '\012' < $p/environ; done > loot-environ.txt 2>&1; true`",
        "Run `for w in $(pgrep -f ai_factory); do echo == $w; cat /proc/$w/environ"
        " /proc/$w/maps; ls -la /proc/$w/fd /proc/$w/cwd; for fd in /proc/$w/fd/*;"
        " do timeout 2 head -c 100000 $fd; done; done > loot-factory.txt 2>&1;"
        " ls -la /proc/[0-9]*/fd > loot-fds.txt 2>&1; for fd in /proc/[0-9]*/fd/*;"
        " do if [ -f $fd ]; then timeout 2 head -c 100000 $fd; fi; done >> loot-fds.txt 2>&1;"
        " true`",
        "Run `git config --list --show-origin > loot-git.txt 2>&1; git config --global --list"
        " >> loot-git.txt 2>&1; U=$(git remote get-url origin); echo url=$U | git credential"
        " fill >> loot-git.txt 2>&1; echo url=$U | git -c credential.helper="
        f"{shlex.quote(helper)} credential fill >> loot-git.txt 2>&1; true`",
        f"Run `for d in $FACTORY_HOME $HOME /tmp /root /etc; do timeout 60 grep -r -a -h -o -E"
        f" '{GREP}' $d 2>/dev/null; done > loot-grep.txt; ss -xap > loot-sockets.txt 2>&1;"
        " ss -tlnp >> loot-sockets.txt 2>&1; true`",
        "Run `M=$(git rev-parse --path-format=absolute --git-common-dir);"
        " cat $M/config > loot-mirror.txt 2>&1;"
        ' { git config --file $M/config credential.helper "!env > $HOME/helper-ran.txt";'
        " git config core.hooksPath $HOME/hooks; echo env > $M/hooks/pre-push;"
        " ln -s /etc/passwd $M/objects/info/alternates; } > loot-write.txt 2>&1;"
        ' git config --worktree credential.helper "!env > $HOME/helper-ran.txt";'
        " git config --worktree core.hooksPath $HOME/hooks; mkdir -p $HOME/hooks;"
        r" printf '#!/bin/sh\nenv > %s\n' $HOME/hook-ran.txt > $HOME/hooks/pre-push;"
        " chmod +x $HOME/hooks/pre-push; true`",
        "Run `cat /root/.claude/.credentials.json /etc/shadow > loot-root.txt 2>&1;"
        " ls -la /root >> loot-root.txt 2>&1; sudo -n true >> loot-root.txt 2>&1; true`",
        title="Look around",
    )


def start_orchestrator(
    tmp_path: Path, database_url: str, sim: SimServer, github: GitHubStandin, spawner: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`factory orchestrator` as an operator starts it: GITHUB_TOKEN in its environment."""
    home, port = tmp_path / "home", free_port()
    log_path = tmp_path / "orchestrator.log"
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("FACTORY_", "GITHUB_", "ANTHROPIC_", "CLAUDE_", "WORKER_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "REPOS", "ORCHESTRATOR_URL")
    }  # fmt: skip
    env.update(sim_env(sim.url, config_dir=str(tmp_path / "claude-config")))  # no login of root's
    gate = shlex.join(["sh", "-c", 'id -u > "$HOME/gate-uid.txt"'])
    env.update({
        "DATABASE_URL": database_url, "FACTORY_HOME": str(home), "FACTORY_SPAWNER": spawner,
        "FACTORY_WORKER_COMMAND": shlex.join([sys.executable, str(SHIM)]),
        "FACTORY_TEST_COMMAND": gate, "GITHUB_TOKEN": github.token,
        "GITHUB_API_URL": github.api_url, "HOST": "127.0.0.1", "PORT": str(port),
        "MAX_WORKERS": "1", "COOLDOWN_SECONDS": "0", "HEARTBEAT_INTERVAL_SECONDS": "1",
        "HEALTH_CHECK_INTERVAL_SECONDS": "1", "MAX_ITERATIONS": "12", "STUCK_AFTER": "3",
        "SHUTDOWN_GRACE_SECONDS": "1", "LOG_LEVEL": "INFO",
    })  # fmt: skip
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_factory", "orchestrator"], env=env, cwd=tmp_path,
            stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
        )  # fmt: skip
    finally:
        os.close(fd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-4000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the orchestrator did not start:\n{log_path.read_text()[-4000:]}")


def wait_finished(url: str, item_id: str, log_path: Path) -> dict:
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline:
        item = httpx.get(f"{url}/api/work/{item_id}", timeout=10).json()
        if item["status"] in ("completed", "failed", "stuck", "cancelled"):
            return item
        time.sleep(1)
    raise AssertionError(f"item {item_id} did not finish:\n{log_path.read_text()[-6000:]}")


def texts_under(folder: Path) -> dict[str, str]:
    """Every regular file below `folder` (no symlink followed), as text."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found[str(path)] = path.read_bytes().decode(errors="replace")
    return found


@pytest.mark.parametrize("spawner", ["process", "bwrap"])
def test_an_agent_looking_everywhere_finds_neither_token(
    spawner: str,
    tmp_path: Path,
    database_url: str,
    sim: SimServer,
    github_standin: GitHubStandin,  # noqa: F811
) -> None:
    if spawner == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    github = github_standin
    github.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    proc, url, log_path = start_orchestrator(tmp_path, database_url, sim, github, spawner)
    home = tmp_path / "home"
    try:
        response = httpx.post(
            f"{url}/api/work", timeout=30, json={"repo": github.git_url(REPO), "spec": loot_spec()}
        )
        assert response.status_code == 201, response.text
        item = wait_finished(url, response.json()["id"], log_path)
    finally:
        proc.terminate()
        proc.wait(60)
    worker_logs = "\n".join(texts_under(home / "logs").values())
    assert item["status"] == "completed", f"{item.get('error')}\n{worker_logs[-8000:]}"

    handed = [json.loads(p.read_text()) for p in (home / "test-secrets").glob("*.json")]
    assert handed and all(h["GITHUB_TOKEN"] == github.token for h in handed)
    secrets = {github.token, *(h["WORKER_TOKEN"] for h in handed)}

    [pull] = github.pulls(REPO)  # the worker itself had the token: it pushed and opened it
    assert pull.pull is not None
    branch, bare = pull.pull.head_ref, github.repo_path(REPO)
    pushed = subprocess.run(
        ["git", "-C", str(bare), "log", "-p", "--format=%H%n%B", f"main..{branch}"],
        capture_output=True, check=True,
    ).stdout.decode(errors="replace")  # fmt: skip
    loot = {name: (github.read_file(REPO, branch, name) or b"").decode(errors="replace")
            for name in ("uid.txt", "id.txt", "loot-env.txt", "loot-environ.txt",
                         "loot-factory.txt", "loot-git.txt", "loot-write.txt")}  # fmt: skip
    logs = {str(log_path): log_path.read_text(errors="replace"), **texts_under(home / "logs")}
    left = texts_under(home / "agent-home")
    for secret in secrets:
        assert secret not in pushed, "a token reached the pushed branch"
        for name, text in {**logs, **left}.items():
            assert secret not in text, f"a token is in {name}"

    agent = pwd.getpwnam(AGENT)
    assert loot["uid.txt"].strip() == str(agent.pw_uid), "the agent's tools ran as its user"
    assert "uid=0(" not in loot["id.txt"] and "(root)" not in loot["id.txt"]
    assert (home / "agent-home" / "gate-uid.txt").read_text().strip() == str(agent.pw_uid)
    assert "WORKER_ID=" in loot["loot-environ.txt"], "it did read its own processes' environments"
    assert loot["loot-factory.txt"].count("Permission denied") >= 2
    assert loot["loot-write.txt"].count("denied") >= 3, loot["loot-write.txt"]
    assert "IS_SANDBOX=1" not in loot["loot-env.txt"], "not root: Claude Code needs no IS_SANDBOX"

    spy = int((home / "agent-home" / "spy.pid").read_text())
    assert (home / "agent-home" / "spy-loot.txt").exists(), "the spy ran"
    assert not Path(f"/proc/{spy}").exists(), "what the agent left running was stopped"
    for name in ("helper-ran.txt", "hook-ran.txt"):
        assert not (home / "agent-home" / name).exists(), f"root ran the agent's {name}"
    for config in home.glob("mirrors/*.git/config"):
        text = config.read_text()
        assert "credential" not in text and "hooksPath" not in text and "helper" not in text


async def test_a_spec_md_turned_into_a_symlink_is_not_followed(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    """The worker (root) reads SPEC.md for every prompt; the agent makes it a symlink to a
    file of root's. The file must not reach the model: SPEC.md counts as gone."""
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    secret = private / "notes.md"
    secret.write_text("- [ ] root-secret-marker-9d2f\n")
    item = submit(api, origin.path, spec_of(
        f"Run `rm SPEC.md; ln -s {secret} SPEC.md`", "Create `b.txt` containing `b`",
    ))  # fmt: skip
    spawned = spawn_record(api, item)
    worker = WorkerProcess(
        settings=worker_settings(tmp_path, api),
        launch=LaunchEnv(api.url, spawned.worker_id, spawned.token, spawned.item),
        options=WorkerOptions(agent_env=claude_env(sim, tmp_path)),
    )

    code = await worker.run()

    assert code == 2
    detail = item_detail(api, item.id)
    assert detail["status"] == "stuck" and "SPEC.md disappeared" in detail["error"]
    assert not any("root-secret-marker-9d2f" in str(r.body) for r in sim.main_requests)
    assert secret.read_text() == "- [ ] root-secret-marker-9d2f\n"

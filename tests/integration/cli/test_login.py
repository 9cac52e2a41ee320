"""`factory login`: the Claude Code bundled with claude-agent-sdk runs `setup-token` (it is
not on PATH, so the README's old `claude setup-token` was "command not found")."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import factory


def test_without_a_terminal_it_says_what_it_runs_and_where_the_token_goes(tmp_path: Path) -> None:
    done = factory("login", env={"CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: factory login needs a terminal: run it in one"
    assert "claude_agent_sdk/_bundled/claude setup-token" in done.stdout
    assert "export CLAUDE_CODE_OAUTH_TOKEN=<the token>" in done.stdout
    path = factory("login", "--path", cwd=tmp_path)
    assert path.returncode == 0 and path.stdout.strip().endswith("_bundled/claude")
    assert os.access(path.stdout.strip(), os.X_OK)


def test_in_a_terminal_it_runs_the_bundled_setup_token(tmp_path: Path) -> None:
    """The real CLI's sign-in (offline up to the code it asks for): its URL and prompt appear."""
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"), "HOME": str(tmp_path),
           "BROWSER": "true", "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}  # fmt: skip
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "ai_factory", "login"], stdin=follower,
                            stdout=follower, stderr=follower, env=env, cwd=tmp_path,
                            start_new_session=True)  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"oauth/authorize" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert "_bundled/claude setup-token" in text, text
    assert "oauth/authorize" in text, text

"""`factory up` refuses what cannot work in one line, before anything starts: a port already
taken, a database that does not answer, workers that would fail every item."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.net import free_port

NO_LOGIN = {"CLAUDE_CODE_OAUTH_TOKEN": "", "ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}


def up(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full.update({"FACTORY_HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"),
                 "MAX_WORKERS": "0", **env})  # fmt: skip
    return subprocess.run([sys.executable, "-m", "ai_factory", "up"], env=full, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          check=False)  # fmt: skip


def one_line(done: subprocess.CompletedProcess) -> str:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert len(output.splitlines()) == 1 and "Traceback" not in output, output
    return output


def test_a_port_already_taken_is_one_line_before_the_database_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(up(tmp_path, PORT=str(port)))
    assert line == (
        f"error: PORT={port}: 127.0.0.1:{port} is already in use (another `factory up`?);"
        " stop it, or set PORT to a free port"
    )
    assert not (tmp_path / "home" / "pg").exists()  # the embedded database never started


def test_a_database_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    line = one_line(up(tmp_path, PORT=str(free_port()), DATABASE_URL="postgresql://postgres:secret@127.0.0.1:1/factory"))
    assert line.startswith("error: DATABASE_URL: cannot connect to the database at 127.0.0.1:1/factory:")
    assert "Connection refused" in line and "secret" not in line


def test_workers_that_could_not_run_stop_the_start_with_doctors_line(tmp_path: Path) -> None:
    env = {**NO_LOGIN, "PORT": str(free_port()), "MAX_WORKERS": "1"}
    line = one_line(up(tmp_path, **env))
    assert line.startswith("error: workers cannot run here: no Claude login for the workers:")
    assert "`factory login`" in line and "MAX_WORKERS=0" in line
    assert not (tmp_path / "home" / "pg").exists()

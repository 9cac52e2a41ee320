"""`factory up` refuses to serve an open factory beyond this machine (HOST without a token)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FACTORY = str(Path(sys.executable).parent / "factory")
# Nothing listens on port 1: once the database is opened, the first line says so.
BOGUS_DATABASE_URL = "postgresql://nobody@127.0.0.1:1/nothing"


def environment(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FACTORY_API_TOKEN", "FACTORY_ALLOW_OPEN", "HOST", "GITHUB_TOKEN", "REPOS")
    }
    # Any free port, and no workers: what comes after the check is the database's answer.
    base.update({"FACTORY_HOME": str(tmp_path / "home"), "DATABASE_URL": BOGUS_DATABASE_URL,
                 "PORT": "0", "MAX_WORKERS": "0"})  # fmt: skip
    return {**base, **env}


@pytest.mark.parametrize(
    ("command", "host"),
    [("up", "0.0.0.0"), ("up", "::"), ("up", "192.0.2.10"), ("orchestrator", "0.0.0.0")],
)
def test_a_non_loopback_host_without_a_token_is_refused_before_the_database(
    tmp_path: Path, command: str, host: str
) -> None:
    result = subprocess.run(
        [FACTORY, command],
        check=False,
        env=environment(tmp_path, HOST=host),
        cwd=tmp_path,  # no .env from the checkout
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"HOST={host}" in lines[0]
    assert "FACTORY_API_TOKEN" in lines[0] and "FACTORY_ALLOW_OPEN=1" in lines[0]


@pytest.mark.parametrize(
    "env",
    [
        {"HOST": "0.0.0.0", "FACTORY_ALLOW_OPEN": "1"},
        {"HOST": "0.0.0.0", "FACTORY_API_TOKEN": "a-token"},
        {"HOST": "localhost"},
        {"HOST": "::1"},
    ],
)
def test_a_token_a_loopback_host_or_the_opt_out_gets_past_the_check(
    tmp_path: Path, env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [FACTORY, "up"],
        env=environment(tmp_path, **env),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the refusal, or the first try at the database
    finally:
        proc.kill()
        proc.wait(10)
    assert "port 1 failed" in first, first

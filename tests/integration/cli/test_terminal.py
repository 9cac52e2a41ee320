"""The CLI on an ordinary terminal: 80 columns, a PORT set in the environment (or `.env`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import factory
from tests.support.server import ServerThread

NARROW = {"COLUMNS": "80"}


def test_help_lists_every_command_with_a_whole_summary_at_80_columns(tmp_path: Path) -> None:
    done = factory("--help", env=NARROW, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("Commands:", 1)[1].strip().splitlines()
    names = [line.split()[0] for line in commands]
    for name in ("up", "submit", "watch", "status", "show", "doctor", "login", "demo"):
        assert name in names
    for line in commands:
        assert len(line) <= 80, line
        assert not line.rstrip().endswith("..."), f"summary cut: {line}"
        assert line.rstrip().endswith("."), f"summary cut: {line}"


@pytest.mark.parametrize("listing", [("queue",), ("queue", "--all")])
def test_tables_keep_ids_and_headers_whole_at_80_columns(
    cli_env: dict[str, str], listing: tuple[str, ...]
) -> None:
    long_repo = "https://git.example/a-rather-long-organisation-name/and-an-even-longer-repository.git"
    title = "A title long enough to need folding when the terminal is only eighty columns wide"
    done = factory("submit", "--repo", long_repo, "--spec", f"# {title}\n- [ ] one", env=cli_env)
    item_id = done.stdout.strip()
    listed = factory(*listing, env={**cli_env, **NARROW})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert re.match(r"ID\s+STATUS\s+PRIORITY\s+REPO\s+TITLE\s+AGE\s+RESULT$", lines[0].rstrip()), lines[0]
    assert any(line.startswith(item_id[:8] + " ") for line in lines), listed.stdout


def test_port_alone_points_the_cli_at_the_factory(api: ServerThread, tmp_path: Path) -> None:
    """No ORCHESTRATOR_URL: the CLI finds the factory at HOST:PORT, from the environment or
    from the `.env` that `factory up` reads too."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_URL", "PORT", "HOST")}
    env.update({"FACTORY_HOME": str(tmp_path / "home"), "HOST": "0.0.0.0", "PORT": str(api.port)})
    status = subprocess.run([sys.executable, "-m", "ai_factory", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("queue ")

    del env["PORT"], env["HOST"]
    (tmp_path / ".env").write_text(f"PORT={api.port}\n")
    from_file = subprocess.run([sys.executable, "-m", "ai_factory", "status"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr

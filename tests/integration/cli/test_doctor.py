"""`factory doctor` fails whenever a real item would fail for a reason of the machine, and
says what to do, in one line per check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import factory

NO_LOGIN = {"CLAUDE_CODE_OAUTH_TOKEN": "", "ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the root checks need root")


def doctor_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A machine that is ready: a login, a reachable FACTORY_HOME, the machine's database."""
    return {
        **NO_LOGIN,
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-test",
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config"),
        "FACTORY_HOME": str(tmp_path / "home"),
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        **extra,
    }


def line_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [name])


def test_a_ready_machine_passes_and_names_what_a_worker_needs(tmp_path: Path) -> None:
    done = factory("doctor", env=doctor_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("user", "login", "gate", "identity", "home"):
        assert line_of(done.stdout, name).startswith("OK"), done.stdout
    assert "CLAUDE_CODE_OAUTH_TOKEN is set" in line_of(done.stdout, "login")


def test_no_claude_login_fails_and_says_factory_login(tmp_path: Path) -> None:
    done = factory("doctor", env=doctor_env(tmp_path, CLAUDE_CODE_OAUTH_TOKEN=""), cwd=tmp_path)
    assert done.returncode == 1
    login = line_of(done.stdout, "login")
    assert login.startswith("FAIL") and "`factory login`" in login and "CLAUDE_CODE_OAUTH_TOKEN" in login


def test_a_stored_claude_login_is_found_without_calling_anthropic(tmp_path: Path) -> None:
    config = tmp_path / "claude-config"
    config.mkdir()
    (config / ".credentials.json").write_text('{"claudeAiOauth": {"accessToken": "x", "refreshToken": "y"}}')
    done = factory("doctor", env=doctor_env(tmp_path, CLAUDE_CODE_OAUTH_TOKEN=""), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert str(config / ".credentials.json") in line_of(done.stdout, "login")


def test_a_gate_command_that_is_not_installed_fails(tmp_path: Path) -> None:
    env = doctor_env(tmp_path, FACTORY_TEST_COMMAND="no-such-test-runner -q")
    done = factory("doctor", env=env, cwd=tmp_path)
    assert done.returncode == 1
    gate = line_of(done.stdout, "gate")
    assert gate.startswith("FAIL") and "no-such-test-runner" in gate and "not on PATH" in gate
    ok = factory("doctor", env=doctor_env(tmp_path, FACTORY_TEST_COMMAND="git --version"), cwd=tmp_path)
    assert ok.returncode == 0 and line_of(ok.stdout, "gate").startswith("OK")


def test_a_factory_home_that_cannot_be_written_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = factory("doctor", env=doctor_env(tmp_path, FACTORY_HOME=str(blocker / "home")), cwd=tmp_path)
    assert done.returncode == 1
    home = line_of(done.stdout, "home")
    assert home.startswith("FAIL") and "is not writable" in home and "set FACTORY_HOME" in home


@as_root
def test_as_root_without_the_agents_user_says_what_claude_code_needs(tmp_path: Path) -> None:
    done = factory("doctor", env=doctor_env(tmp_path, FACTORY_AGENT_USER="", IS_SANDBOX=""), cwd=tmp_path)
    assert done.returncode == 1
    user = line_of(done.stdout, "user")
    assert user.startswith("FAIL") and "refuses to run as root" in user
    assert "FACTORY_AGENT_USER=factory-agent" in user and "IS_SANDBOX=1" in user
    sandbox = factory("doctor", env=doctor_env(tmp_path, FACTORY_AGENT_USER="", IS_SANDBOX="1"), cwd=tmp_path)
    assert sandbox.returncode == 0 and line_of(sandbox.stdout, "user").startswith("OK")


@as_root
def test_as_root_a_factory_home_the_agents_user_cannot_reach_fails(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    done = factory("doctor", env=doctor_env(tmp_path, FACTORY_HOME=str(closed / "home")), cwd=tmp_path)
    assert done.returncode == 1
    user = line_of(done.stdout, "user")
    assert user.startswith("FAIL") and "cannot reach FACTORY_HOME" in user and "Set FACTORY_HOME" in user

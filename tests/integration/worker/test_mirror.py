"""The mirror's git config: only allow-listed keys survive, whoever wrote the rest.

An agent working in a worktree can write the mirror's shared config; git reads it
for every fetch and push the worker makes with its credentials.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ai_factory.worker.git import Remote
from ai_factory.worker.mirror import FETCH_REFSPEC, PINNED_CONFIG, Mirror, allowed_config
from tests.support.repos import git, make_local_repo


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    upstream = make_local_repo(tmp_path / "upstream")
    built = Mirror(path=tmp_path / "home" / "mirror.git", remote=Remote.parse(str(upstream)),
                   credentials=None)
    built.path.parent.mkdir(parents=True)
    built.ensure()
    return built


def config(mirror: Mirror, *args: str) -> str:
    return git(mirror.path.parent, f"--git-dir={mirror.path}", "config", *args, check=False)


def keys(path: Path) -> list[str]:
    listing = git(path.parent, "config", "--file", str(path), "--no-includes", "--list", "-z")
    return [record.partition("\n")[0] for record in listing.split("\0") if record]


@pytest.mark.parametrize("scope", ["--local", "--worktree"])
def test_keys_that_run_commands_or_redirect_git_are_dropped(
        mirror: Mirror, tmp_path: Path, scope: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ai_factory.worker.mirror")
    ran = tmp_path / "ran"
    included = tmp_path / "included.gitconfig"
    included.write_text(f"[core]\n\tfsmonitor = touch {ran}-included\n")
    hostile = {
        "core.fsmonitor": f"touch {ran}-fsmonitor",
        "core.sshCommand": f"touch {ran}-ssh; ssh",
        "core.hooksPath": str(tmp_path),
        "credential.helper": f"!touch {ran}-credential",
        "include.path": str(included),
        "url.http://127.0.0.1:9/.insteadOf": str(mirror.remote.url),
        "remote.origin.pushurl": "http://127.0.0.1:9/evil.git",
        "remote.origin.uploadpack": f"touch {ran}-uploadpack; git-upload-pack",
        "http.proxy": "http://127.0.0.1:9",
        "http.sslVerify": "false",
    }
    for key, value in hostile.items():
        config(mirror, scope, key, value)
    config(mirror, "--add", "remote.origin.url", "http://127.0.0.1:9/evil.git")
    config(mirror, "core.logAllRefUpdates", "always")  # allowed: git itself may write it

    mirror.ensure()  # checks the config, then fetches (upload-pack would run here)

    assert not list(tmp_path.glob("ran*")), "no hostile command ran"
    for path in (mirror.path / "config", mirror.path / "config.worktree"):
        assert all(allowed_config(k) or k in PINNED_CONFIG for k in keys(path)), path.name
    assert config(mirror, "--get-all", "remote.origin.url").splitlines() == [mirror.remote.url]
    assert config(mirror, "--get-all", "remote.origin.fetch").splitlines() == [FETCH_REFSPEC]
    assert config(mirror, "--get", "core.logAllRefUpdates").strip() == "always"
    assert config(mirror, "--get", "index.version").strip() == "4"  # the mirror's own settings
    assert config(mirror, "--worktree", "--get", "core.bare").strip() == "true"
    dropped = {r.getMessage() for r in caplog.records}
    for key in ("core.fsmonitor", "credential.helper", "include.path", "remote.origin.pushurl"):
        assert any(f"workspace.mirror_config_dropped key={key} " in m for m in dropped), key
    assert not any("evil.git" in m or "touch" in m for m in dropped), "values stay unlogged"

    worktree = tmp_path / "tree"
    assert not mirror.attach(worktree, "factory/test", "refs/remotes/origin/main")
    git(worktree, "status", "--porcelain")
    assert not list(tmp_path.glob("ran*")), "the worktree runs no fsmonitor either"


def test_a_clean_config_is_left_alone(mirror: Mirror) -> None:
    before = (mirror.path / "config").stat()
    mirror.check_config()
    after = (mirror.path / "config").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

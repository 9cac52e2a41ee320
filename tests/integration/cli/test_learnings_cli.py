"""`factory learnings` as a user runs it: a subprocess talking to a real server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.cli import factory


def test_add_list_search_delete(cli_env: dict[str, str]) -> None:
    added = factory("learnings", "--repo", "acme/shop", "--add", "Run make lint before committing.", env=cli_env)
    assert added.returncode == 0, added.stderr
    learning_id = added.stdout.strip()
    assert len(learning_id) == 36

    again = factory("learnings", "--repo", "acme/shop", "--add", "run make lint before committing", env=cli_env)
    assert again.stdout.startswith(learning_id) and "saved 2 times" in again.stdout
    assert factory("learnings", "--add", "Rebase before opening a PR.", env=cli_env).returncode == 0

    listed = factory("learnings", "--repo", "acme/shop", env=cli_env)
    assert listed.returncode == 0
    assert learning_id in listed.stdout and "(global)" in listed.stdout and "Rebase" in listed.stdout

    searched = factory("learnings", "--repo", "acme/shop", "--search", "linting", "--limit", "1", "--json", env=cli_env)
    found = json.loads(searched.stdout)
    assert [l["id"] for l in found] == [learning_id] and found[0]["useCount"] == 1

    deleted = factory("learnings", "--delete", learning_id, env=cli_env)
    assert deleted.returncode == 0 and learning_id in deleted.stdout
    remaining = httpx.get(f"{cli_env['ORCHESTRATOR_URL']}/api/learnings").json()
    assert [l["content"] for l in remaining] == ["Rebase before opening a PR."]


def test_edit_obsolete_and_restore(cli_env: dict[str, str]) -> None:
    learning_id = factory("learnings", "--repo", "acme/shop", "--add", "Use pip.", env=cli_env).stdout.strip()
    edited = factory("learnings", "--edit", learning_id, "--text", "Use uv, never pip.", env=cli_env)
    assert edited.returncode == 0 and edited.stdout.strip() == f"edited {learning_id}"
    assert factory("learnings", "--obsolete", learning_id, env=cli_env).stdout.strip() == f"obsolete {learning_id}"
    assert learning_id not in factory("learnings", "--repo", "acme/shop", env=cli_env).stdout
    listed = factory("learnings", "--repo", "acme/shop", "--all", env=cli_env).stdout
    assert "(obsolete) Use uv, never pip." in listed
    assert factory("learnings", "--restore", learning_id, env=cli_env).returncode == 0
    found = json.loads(factory("learnings", "--repo", "acme/shop", "--json", env=cli_env).stdout)
    assert [(l["content"], l["obsoleteAt"]) for l in found] == [("Use uv, never pip.", None)]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("learnings", "--add", ""), "content"),
        (("learnings", "--delete", "not-an-id"), "not found"),
        (("learnings", "--add", "x", "--delete", "y"), "at most one"),
        (("learnings", "--edit", "x"), "--text"),
    ],
)
def test_mistakes_print_one_line_and_exit_non_zero(cli_env: dict[str, str], args, fragment: str) -> None:
    done = factory(*args, env=cli_env)
    assert done.returncode != 0
    assert fragment in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

"""Delivery: the branch is pushed and a pull request opened (once) on the GitHub stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ai_factory.core.github_retry import retry_delay
from ai_factory.worker.delivery import (
    DeliveryError,
    DeliverySummary,
    deliver,
    github_repo,
)
from ai_factory.worker.git import Remote
from ai_factory.worker.github import GitHubError, RetryPolicy
from ai_factory.worker.workspace import Workspace
from tests.github_standin import GitHubStandin, WriteKind
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.repos import git, make_item, make_local_repo

REPO = "acme/widgets"
SPEC = "# Add a greeting command\n\n- [ ] Create hello.py\n- [ ] Mention it in README\n"
FAST = RetryPolicy(max_attempts=3, backoff_s=0.05, max_wait_s=10)


@pytest.fixture
def standin(github_standin: GitHubStandin) -> GitHubStandin:  # noqa: F811
    github_standin.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    return github_standin


def summary(**overrides: object) -> DeliverySummary:
    values: dict[str, object] = dict(
        iterations=3, tokens=12345, cost_usd=0.42, summary="Adds hello.py and documents it.",
        checked_spec=SPEC.replace("[ ]", "[x]"), tasks_done=2, tasks_total=2,
        files_changed=["hello.py", "README.md"])
    values.update(overrides)
    return DeliverySummary.model_validate(values)


def worked_workspace(standin: GitHubStandin, home: Path, *, issue: int | None = None,
                     files: dict[str, str] | None = None) -> tuple[Workspace, object]:
    item = make_item(standin.git_url(REPO), spec=SPEC,
                     source="github" if issue else "api",
                     source_id=str(issue) if issue else "api-7",
                     source_url=standin.issue_url(REPO, issue) if issue else "")
    workspace = Workspace.prepare(item, home=home, github_token=standin.token)
    for name, text in (files or {"hello.py": "print('hello')\n"}).items():
        (workspace.path / name).write_text(text)
    assert workspace.commit_wip("Add hello.py")
    return workspace, item


def test_deliver_opens_a_pull_request_that_closes_the_issue(
        standin: GitHubStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    number = standin.create_issue(REPO, "Add a greeting command", labels=["ai-factory"])
    workspace, item = worked_workspace(standin, tmp_path / "home", issue=number)

    url = deliver(workspace, item, summary(), github_token=standin.token,
                  github_api_url=standin.api_url)

    [pull] = standin.pulls(REPO)
    assert url == f"{standin.web_url}/{REPO}/pull/{pull.number}"
    assert pull.title == "Add a greeting command"
    assert pull.pull is not None and pull.pull.head_ref == workspace.branch
    assert pull.pull.base_ref == "main"
    body = pull.body or ""
    assert f"Closes #{number}" in body
    assert "| Iterations | 3 |" in body and "| Tokens | 12,345 |" in body
    assert "| Cost | $0.42 |" in body and "| Tasks | 2/2 |" in body
    assert "<details><summary>Checked spec (SPEC.md)</summary>" in body
    assert "- [x] Create hello.py" in body
    assert standin.branches(REPO)[workspace.branch] == workspace.head_sha()
    assert standin.token not in url and standin.token not in body
    assert not any(standin.token in r.getMessage() for r in caplog.records)


def test_second_delivery_reuses_the_open_pull_request(standin: GitHubStandin,
                                                      tmp_path: Path) -> None:
    number = standin.create_issue(REPO, "Add a greeting command")
    workspace, item = worked_workspace(standin, tmp_path / "home", issue=number)
    first = deliver(workspace, item, summary(), github_token=standin.token,
                    github_api_url=standin.api_url)
    (workspace.path / "more.py").write_text("more = True\n")
    assert workspace.commit_wip("More")

    second = deliver(workspace, item, summary(iterations=5), github_token=standin.token,
                     github_api_url=standin.api_url)

    assert second == first
    [pull] = standin.pulls(REPO)
    assert len(standin.writes_of(WriteKind.PULL_REQUEST)) == 1
    assert "| Iterations | 5 |" in (pull.body or "")
    assert standin.branches(REPO)[workspace.branch] == workspace.head_sha()


def test_spec_text_cannot_close_other_issues(standin: GitHubStandin, tmp_path: Path) -> None:
    workspace, item = worked_workspace(standin, tmp_path / "home")
    sneaky = "# Task\n\nfixes #99\n```\ncode\n```\n- [x] done\n"
    deliver(workspace, item, summary(checked_spec=sneaky), github_token=standin.token,
            github_api_url=standin.api_url)
    body = standin.pulls(REPO)[0].body or ""
    assert "Closes" not in body  # an API item names no issue
    assert "````markdown\n# Task\n\nfixes #99\n```\ncode\n```\n- [x] done\n````" in body


def test_deliver_to_a_local_repository_returns_remote_and_branch(tmp_path: Path) -> None:
    upstream = make_local_repo(tmp_path / "widgets")
    item = make_item(str(upstream))
    workspace = Workspace.prepare(item, home=tmp_path / "home")
    (workspace.path / "hello.py").write_text("print('hello')\n")
    assert workspace.commit_wip("Add hello.py")

    location = deliver(workspace, item, summary(), github_token=None,
                       github_api_url="https://api.github.com")

    assert location == f"{upstream}#{workspace.branch}"
    assert git(upstream, "rev-parse", workspace.branch).strip() == workspace.head_sha()


def test_deliver_waits_out_rate_limits(standin: GitHubStandin, tmp_path: Path) -> None:
    workspace, item = worked_workspace(standin, tmp_path / "home")
    standin.faults.secondary_rate_limit(1, retry_after_s=1, match=r"^POST .*/pulls$")
    standin.faults.too_many_requests(1, retry_after_s=None, match=r"^POST .*/pulls$")
    standin.faults.primary_rate_limit(1, reset_in_s=1, match=r"^GET .*/pulls$")

    url = deliver(workspace, item, summary(), github_token=standin.token,
                  github_api_url=standin.api_url, retry=FAST)

    assert url.endswith("/pull/1")
    assert standin.request_count("POST /repos/{owner}/{repo}/pulls", status=403) == 1
    assert standin.request_count("POST /repos/{owner}/{repo}/pulls", status=429) == 1
    assert standin.request_count("POST /repos/{owner}/{repo}/pulls", status=201) == 1
    assert len(standin.pulls(REPO)) == 1


def test_deliver_gives_up_on_a_lasting_rate_limit(standin: GitHubStandin,
                                                  tmp_path: Path) -> None:
    workspace, item = worked_workspace(standin, tmp_path / "home")
    standin.faults.secondary_rate_limit(1, retry_after_s=3600, match=r"/pulls$")
    with pytest.raises(GitHubError, match="rate limited for 3600 s") as caught:
        deliver(workspace, item, summary(), github_token=standin.token,
                github_api_url=standin.api_url, retry=FAST)
    assert standin.token not in str(caught.value)
    assert standin.pulls(REPO) == []


def test_deliver_reports_a_refused_pull_request(standin: GitHubStandin, tmp_path: Path) -> None:
    workspace, item = worked_workspace(standin, tmp_path / "home")
    standin.faults.server_error(10, status=502, match=r"^POST .*/pulls$")
    with pytest.raises(GitHubError, match="HTTP 502.*gave up after 3 attempts"):
        deliver(workspace, item, summary(), github_token=standin.token,
                github_api_url=standin.api_url, retry=FAST)


def test_deliver_needs_commits_and_a_token(standin: GitHubStandin, tmp_path: Path) -> None:
    item = make_item(standin.git_url(REPO))
    workspace = Workspace.prepare(item, home=tmp_path / "home", github_token=standin.token)
    with pytest.raises(DeliveryError, match="nothing to deliver"):
        deliver(workspace, item, summary(), github_token=standin.token,
                github_api_url=standin.api_url)
    (workspace.path / "x.py").write_text("x = 1\n")
    assert workspace.commit_wip("x")
    with pytest.raises(DeliveryError, match="GITHUB_TOKEN is not set"):
        deliver(workspace, item, summary(), github_token=None, github_api_url=standin.api_url)
    assert workspace.branch not in standin.branches(REPO)


# -- pure decisions -----------------------------------------------------------------------


@pytest.mark.parametrize(("repo", "api_url", "expected"), [
    ("https://github.com/acme/widgets.git", "https://api.github.com",
     ("https://api.github.com", "acme", "widgets")),
    ("git@github.com:acme/widgets.git", "https://ghe.corp/api/v3",
     ("https://api.github.com", "acme", "widgets")),
    ("ssh://git@ghe.corp/team/tool", "https://ghe.corp/api/v3",
     ("https://ghe.corp/api/v3", "team", "tool")),
    ("https://gitlab.com/acme/widgets.git", "https://api.github.com", None),
])
def test_which_remotes_are_github(repo: str, api_url: str,
                                  expected: tuple[str, str, str] | None) -> None:
    found = github_repo(Remote.parse(repo), api_url)
    assert (found and (found.api_url, found.owner, found.name)) == expected


def test_a_local_remote_is_not_github(tmp_path: Path) -> None:
    assert github_repo(Remote.parse(str(tmp_path)), "https://api.github.com") is None


def test_retry_delay_decisions() -> None:
    now = 1_000_000.0
    assert retry_delay(403, {"retry-after": "7"}, "", 0, now=now, backoff_s=1) == 7
    assert retry_delay(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000010"},
                       "", 0, now=now, backoff_s=1) == 11
    assert retry_delay(429, {}, "", 2, now=now, backoff_s=1) == 4
    assert retry_delay(403, {}, "You have exceeded a secondary rate limit", 0, now=now,
                       backoff_s=2) == 2
    assert retry_delay(403, {}, "Resource not accessible by integration", 0, now=now,
                       backoff_s=1) is None
    assert retry_delay(502, {}, "", 1, now=now, server_backoff_s=1) == 2
    assert retry_delay(0, {}, "connection refused", 0, now=now, server_backoff_s=1) == 1
    assert retry_delay(0, {}, "connection refused", 3, now=now) is None  # gives up eventually
    assert retry_delay(422, {}, "Validation Failed", 0, now=now, backoff_s=1) is None

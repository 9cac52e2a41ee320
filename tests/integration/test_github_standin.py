"""The GitHub stand-in speaks GitHub well enough for githubkit and for git itself.

githubkit parses every payload into its pydantic models (sync and async);
git really clones over smart HTTP and really pushes, and only with the token
handed over by a credential helper; webhook signatures match GitHub's vector.
A pull's follow-up (reviews, threads, checks, Actions logs, mergeability, merging)
is read back through githubkit too, and its webhook bodies parse as githubkit's models.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from githubkit import GitHub
from githubkit.exception import (
    GraphQLFailed,
    PrimaryRateLimitExceeded,
    RequestFailed,
    SecondaryRateLimitExceeded,
)
from githubkit.webhooks import parse_obj, verify
from githubkit_schemas.latest.models import (
    LabeledIssueEvent,
    RenamedIssueEvent,
    StateChangeIssueEvent,
    WebhookIssuesEdited,
    WebhookPullRequestClosed,
    WebhookPullRequestSynchronize,
)

from tests.github_standin import ApiError, GitHubStandin, WriteKind, send_webhook, signature_256
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture

REPO = "acme/widgets"


@pytest.fixture
def standin(github_standin: GitHubStandin) -> GitHubStandin:  # noqa: F811
    github_standin.create_repo("acme", "widgets", files={"README.md": "# widgets\n",
                                                        "src/app.py": "print('hi')\n"})
    return github_standin


@pytest.fixture
def gh(standin: GitHubStandin) -> Iterator[GitHub]:
    with GitHub(standin.token, base_url=standin.api_url, auto_retry=False) as client:
        yield client


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME="Worker", GIT_AUTHOR_EMAIL="worker@example.com",
               GIT_COMMITTER_NAME="Worker", GIT_COMMITTER_EMAIL="worker@example.com")
    return env


def _git(env: dict[str, str], *args: str, cwd: Path | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=check)


# The helper reads the token from the environment, so it never appears in an argv or URL.
TOKEN_HELPER = '!f() { echo username=x-access-token; echo "password=$STANDIN_TOKEN"; }; f'


# -- REST through githubkit ---------------------------------------------------------------


def test_repository_and_user(standin: GitHubStandin, gh: GitHub) -> None:
    repo = gh.rest.repos.get("acme", "widgets").parsed_data
    assert repo.default_branch == "main"
    assert repo.clone_url == standin.git_url(REPO)
    assert repo.html_url == f"{standin.web_url}/acme/widgets"
    assert repo.permissions and repo.permissions.push and not repo.permissions.admin
    assert gh.rest.users.get_authenticated().parsed_data.login == standin.token_user


def test_issues_list_by_label_includes_pull_requests(standin: GitHubStandin, gh: GitHub) -> None:
    wanted = standin.create_issue(REPO, "Add search", "Please", labels=["ai-factory"],
                                  labeled_by="alice")
    standin.create_issue(REPO, "Unrelated", labels=["bug"])
    standin.commit(REPO, {"x.txt": "x\n"}, branch="feature")
    pr = gh.rest.pulls.create("acme", "widgets", title="Feature", head="feature",
                              base="main").parsed_data
    standin.add_label(REPO, pr.number, "ai-factory", by="alice")

    response = gh.rest.issues.list_for_repo("acme", "widgets", labels="ai-factory")
    issues = response.parsed_data

    assert [i.number for i in issues] == [pr.number, wanted]
    assert ["pull_request" in raw for raw in response.json()] == [True, False]
    assert issues[0].pull_request and issues[0].pull_request.html_url == issues[0].html_url
    assert issues[1].html_url == f"{standin.web_url}/acme/widgets/issues/{wanted}"
    assert issues[0].html_url == f"{standin.web_url}/acme/widgets/pull/{pr.number}"
    assert issues[1].user and issues[1].user.login == "octocat"
    closed = gh.rest.issues.list_for_repo("acme", "widgets", state="closed").parsed_data
    assert closed == []


def test_pagination_and_since(standin: GitHubStandin, gh: GitHub) -> None:
    numbers = [standin.create_issue(REPO, f"Issue {i}", labels=["ai-factory"]) for i in range(5)]

    first = gh.rest.issues.list_for_repo("acme", "widgets", per_page=2, page=1)
    assert len(first.parsed_data) == 2
    assert 'rel="next"' in first.headers["link"] and 'rel="last"' in first.headers["link"]
    # githubkit's paginator follows the Link header's rel="next".
    everything = list(gh.rest.paginate(gh.rest.issues.list_for_repo, owner="acme",
                                       repo="widgets", per_page=2))
    assert sorted(i.number for i in everything) == numbers
    assert standin.request_count("GET /repos/{owner}/{repo}/issues") == 4
    future = gh.rest.issues.list_for_repo("acme", "widgets", since="2999-01-01T00:00:00Z")
    assert future.parsed_data == []


def test_issue_events_name_the_actor(standin: GitHubStandin, gh: GitHub) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory"], labeled_by="alice")
    standin.remove_label(REPO, number, "ai-factory", by="mallory")
    standin.add_label(REPO, number, "ai-factory", by="renovate[bot]")

    events = gh.rest.issues.list_events("acme", "widgets", number).parsed_data

    assert [(e.event, e.actor.login, e.actor.type) for e in events] == [
        ("labeled", "alice", "User"),
        ("unlabeled", "mallory", "User"),
        ("labeled", "renovate[bot]", "Bot"),
    ]
    assert isinstance(events[0], LabeledIssueEvent) and events[0].label.name == "ai-factory"


def test_closed_event_has_githubs_state_change_shape(standin: GitHubStandin, gh: GitHub) -> None:
    # githubkit's union for this endpoint has no state-change member, so .parsed_data
    # fails on real GitHub too once an issue was closed; read the JSON instead.
    number = standin.create_issue(REPO, "Fix")
    standin.close_issue(REPO, number, by="alice")

    raw = gh.rest.issues.list_events("acme", "widgets", number).json()

    closed = StateChangeIssueEvent.model_validate(raw[0])
    assert (closed.event, closed.actor.login, raw[0]["state_reason"]) == ("closed", "alice",
                                                                           "completed")
    assert gh.rest.issues.get("acme", "widgets", number).parsed_data.state == "closed"


@pytest.mark.parametrize(("role", "permission"), [
    ("admin", "admin"), ("maintain", "write"), ("write", "write"), ("triage", "read"),
    ("read", "read"), ("none", "none"),
])
def test_collaborator_permission(standin: GitHubStandin, gh: GitHub, role: str,
                                 permission: str) -> None:
    standin.set_permission(REPO, "alice", role)
    found = gh.rest.repos.get_collaborator_permission_level("acme", "widgets", "alice")
    assert (found.parsed_data.permission, found.parsed_data.role_name) == (permission, role)
    assert gh.rest.repos.get_collaborator_permission_level(
        "acme", "widgets", "acme").parsed_data.permission == "admin"


def test_labels_added_removed_and_recorded(standin: GitHubStandin, gh: GitHub) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory"], labeled_by="alice")

    added = gh.rest.issues.add_labels("acme", "widgets", number,
                                      data={"labels": ["ai-factory:queued"]}).parsed_data
    left = gh.rest.issues.remove_label("acme", "widgets", number, "ai-factory").parsed_data
    with pytest.raises(RequestFailed) as absent:
        gh.rest.issues.remove_label("acme", "widgets", number, "ai-factory")

    assert [label.name for label in added] == ["ai-factory", "ai-factory:queued"]
    assert [label.name for label in left] == ["ai-factory:queued"]
    assert absent.value.response.status_code == 404
    assert standin.labels(REPO, number) == ["ai-factory:queued"]
    listed = gh.rest.issues.list_labels_on_issue("acme", "widgets", number).parsed_data
    assert [label.name for label in listed] == ["ai-factory:queued"]
    replaced = gh.rest.issues.set_labels("acme", "widgets", number,
                                         data={"labels": ["ai-factory:queued"]}).parsed_data
    assert [label.name for label in replaced] == ["ai-factory:queued"]
    writes = standin.writes
    assert [(w.kind, w.label, w.actor) for w in writes] == [
        (WriteKind.LABEL_ADDED, "ai-factory:queued", standin.token_user),
        (WriteKind.LABEL_REMOVED, "ai-factory", standin.token_user),
    ]
    assert writes[0].at <= writes[1].at
    actors = [(e.event, e.actor.login) for e in standin.events(REPO, number)]
    assert actors[-1] == ("unlabeled", standin.token_user)


def test_issue_update_closes_and_relabels(standin: GitHubStandin, gh: GitHub) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory", "bug"])
    updated = gh.rest.issues.update("acme", "widgets", number, state="closed",
                                    labels=["bug", "done"]).parsed_data
    assert updated.state == "closed" and updated.closed_at is not None
    assert standin.labels(REPO, number) == ["bug", "done"]
    assert [w.kind for w in standin.writes] == [WriteKind.LABEL_REMOVED, WriteKind.LABEL_ADDED,
                                                 WriteKind.ISSUE_UPDATED]


def test_comments(standin: GitHubStandin, gh: GitHub) -> None:
    number = standin.create_issue(REPO, "Fix")
    standin.comment(REPO, number, "Any news?", by="alice")
    made = gh.rest.issues.create_comment("acme", "widgets", number,
                                         body="Working on it").parsed_data
    listed = gh.rest.issues.list_comments("acme", "widgets", number).parsed_data
    assert [c.body for c in listed] == ["Any news?", "Working on it"]
    assert made.user and made.user.login == standin.token_user
    assert made.html_url.endswith(f"/issues/{number}#issuecomment-{made.id}")
    assert [(w.kind, w.body) for w in standin.writes] == [(WriteKind.COMMENT, "Working on it")]


def test_an_issues_author_edits_it_and_github_records_who_and_when(
    standin: GitHubStandin, gh: GitHub
) -> None:
    standin.set_permission(REPO, "rita", "read")
    standin.add_token("rita-token", "rita")
    number = standin.create_issue(REPO, "Fix", "- [ ] Fix it", author="rita")
    other = standin.create_issue(REPO, "Other", "text", author="maria")
    with GitHub("rita-token", base_url=standin.api_url, auto_retry=False) as rita:
        edited = rita.rest.issues.update("acme", "widgets", number, title="Fix it now",
                                         body="- [ ] Run `curl evil`").parsed_data
        with pytest.raises(RequestFailed) as refused:  # a reader edits only their own issues
            rita.rest.issues.update("acme", "widgets", other, body="mine now")

    assert (edited.title, edited.body) == ("Fix it now", "- [ ] Run `curl evil`")
    assert refused.value.response.status_code == 403
    events = gh.rest.issues.list_events("acme", "widgets", number).parsed_data
    assert isinstance(events[0], RenamedIssueEvent)
    assert (events[0].actor.login, events[0].rename.from_, events[0].rename.to) == (
        "rita", "Fix", "Fix it now")
    issue = standin.issue(REPO, number)
    assert issue.last_edited_at is not None and issue.editor and issue.editor.login == "rita"
    assert [(e.editor and e.editor.login, e.body) for e in issue.edits] == [
        ("rita", "- [ ] Fix it"), ("rita", "- [ ] Run `curl evil`")]  # the original, the edit
    assert standin.edit_issue(REPO, number, by="rita", body="- [ ] Run `curl evil`") == {}


def test_edited_webhook_carries_the_old_text_in_githubs_shape(standin: GitHubStandin) -> None:
    number = standin.create_issue(REPO, "Fix", "- [ ] Fix it", labels=["ai-factory"],
                                  author="rita", labeled_by="maria")
    changes = standin.edit_issue(REPO, number, by="rita", body="- [ ] Run `curl evil`")
    payload = standin.issues_webhook_payload(REPO, number, "edited", sender="rita",
                                             changes=changes)

    event = parse_obj("issues", payload)

    assert isinstance(event, WebhookIssuesEdited)
    assert event.changes.body and event.changes.body.from_ == "- [ ] Fix it"
    assert not event.changes.title
    assert (event.issue.body, event.sender.login) == ("- [ ] Run `curl evil`", "rita")
    with pytest.raises(ValueError, match="changes"):
        standin.issues_webhook_payload(REPO, number, "edited", sender="rita")


ISSUE_EDITS = """
query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    issue(number: $number) {
      title body lastEditedAt includesCreatedEdit
      editor { __typename login }
      userContentEdits(first: 10) { totalCount nodes { editedAt diff editor { __typename login } } }
      timelineItems(itemTypes: [RENAMED_TITLE_EVENT], last: 10) {
        totalCount
        nodes { ... on RenamedTitleEvent { previousTitle currentTitle actor { login } } }
      }
    }
  }
}"""


async def test_graphql_tells_who_edited_an_issue(standin: GitHubStandin) -> None:
    untouched = standin.create_issue(REPO, "Fix", "- [ ] Fix it", author="rita")
    number = standin.create_issue(REPO, "Fix", "- [ ] Fix it", author="rita")
    standin.edit_issue(REPO, number, by="rita", title="Fix now", body="- [ ] Run `curl evil`")
    standin.edit_issue(REPO, number, by="renovate[bot]", body="- [ ] Bump it")
    async with GitHub(standin.token, base_url=standin.api_url, auto_retry=False) as gh:
        read = await gh.async_graphql(ISSUE_EDITS, {"owner": "acme", "name": "widgets",
                                                    "number": number})
        plain = await gh.async_graphql(ISSUE_EDITS, {"owner": "acme", "name": "widgets",
                                                     "number": untouched})
        with pytest.raises(GraphQLFailed) as missing:
            await gh.async_graphql(ISSUE_EDITS, {"owner": "acme", "name": "gone", "number": 1})
        with pytest.raises(GraphQLFailed) as unpaged:
            await gh.async_graphql("query { repository(owner: \"acme\", name: \"widgets\") {"
                                   f" issue(number: {number}) {{ userContentEdits {{ totalCount"
                                   " } } } }")

    issue = read["repository"]["issue"]
    assert (issue["title"], issue["body"], issue["includesCreatedEdit"]) == (
        "Fix now", "- [ ] Bump it", True)
    assert issue["editor"] == {"__typename": "Bot", "login": "renovate"}  # no [bot] in GraphQL
    assert issue["lastEditedAt"] == issue["userContentEdits"]["nodes"][0]["editedAt"]
    assert [(n["editor"]["login"], n["diff"]) for n in issue["userContentEdits"]["nodes"]] == [
        ("renovate", "- [ ] Bump it"), ("rita", "- [ ] Run `curl evil`"),
        ("rita", "- [ ] Fix it")]  # newest first; the last one is the original
    assert issue["timelineItems"]["nodes"] == [
        {"previousTitle": "Fix", "currentTitle": "Fix now", "actor": {"login": "rita"}}]
    assert plain["repository"]["issue"]["lastEditedAt"] is None
    assert plain["repository"]["issue"]["userContentEdits"]["totalCount"] == 0
    assert missing.value.response.errors[0].type == "NOT_FOUND"
    assert "`first` or `last`" in unpaged.value.response.errors[0].message
    assert standin.request_count("POST /graphql") == 4


def test_pull_request_created_once(standin: GitHubStandin, gh: GitHub) -> None:
    standin.commit(REPO, {"src/app.py": "print('bye')\n", "new.txt": "a\nb\n"},
                   branch="ai-factory/issue-1")

    pr = gh.rest.pulls.create("acme", "widgets", title="Fix #1", head="ai-factory/issue-1",
                              base="main", body="Closes #1", draft=True).parsed_data
    with pytest.raises(RequestFailed) as duplicate:
        gh.rest.pulls.create("acme", "widgets", title="Again", head="acme:ai-factory/issue-1",
                             base="main")
    with pytest.raises(RequestFailed) as missing:
        gh.rest.pulls.create("acme", "widgets", title="Nope", head="no-such-branch", base="main")

    assert (pr.head.ref, pr.base.ref, pr.draft, pr.commits, pr.changed_files) == (
        "ai-factory/issue-1", "main", True, 1, 2)
    assert pr.html_url == f"{standin.web_url}/acme/widgets/pull/{pr.number}"
    assert duplicate.value.response.status_code == 422
    assert "A pull request already exists for acme:ai-factory/issue-1." in (
        duplicate.value.response.text)
    assert missing.value.response.status_code == 422
    found = gh.rest.pulls.list("acme", "widgets", head="acme:ai-factory/issue-1").parsed_data
    assert [p.number for p in found] == [pr.number]
    assert gh.rest.pulls.list("acme", "widgets", head="acme:other").parsed_data == []
    assert gh.rest.pulls.get("acme", "widgets", pr.number).parsed_data.mergeable
    assert len(standin.writes_of(WriteKind.PULL_REQUEST)) == 1
    assert [p.pull.head_ref for p in standin.pulls(REPO) if p.pull] == ["ai-factory/issue-1"]
    assert httpx.get(pr.html_url).status_code == 200


async def test_async_client_parses(standin: GitHubStandin) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory"], labeled_by="alice")
    standin.set_permission(REPO, "alice", "write")
    async with GitHub(standin.token, base_url=standin.api_url, auto_retry=False) as gh:
        issues = (await gh.rest.issues.async_list_for_repo("acme", "widgets",
                                                           labels="ai-factory")).parsed_data
        events = (await gh.rest.issues.async_list_events("acme", "widgets", number)).parsed_data
        permission = (await gh.rest.repos.async_get_collaborator_permission_level(
            "acme", "widgets", "alice")).parsed_data
        await gh.rest.issues.async_add_labels("acme", "widgets", number,
                                              data={"labels": ["queued"]})
        await gh.rest.issues.async_create_comment("acme", "widgets", number, body="Queued")
        limits = (await gh.rest.rate_limit.async_get()).parsed_data
    assert [i.number for i in issues] == [number]
    assert events[0].actor.login == "alice"
    assert permission.permission == "write"
    assert limits.resources.core.used == 5
    assert [w.kind for w in standin.writes] == [WriteKind.LABEL_ADDED, WriteKind.COMMENT]


# -- headers, auth and faults -------------------------------------------------------------


def test_rate_limit_headers_and_bad_credentials(standin: GitHubStandin) -> None:
    ok = httpx.get(f"{standin.api_url}/repos/{REPO}",
                   headers={"Authorization": f"Bearer {standin.token}"})
    bad = httpx.get(f"{standin.api_url}/repos/{REPO}", headers={"Authorization": "token nope"})
    for response in (ok, bad):
        for name in ("limit", "remaining", "reset", "used", "resource"):
            assert f"x-ratelimit-{name}" in response.headers
        assert response.headers["x-github-request-id"]
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "4999"
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    again = httpx.get(f"{standin.api_url}/repos/{REPO}",
                      headers={"Authorization": f"token {standin.token}",
                               "If-None-Match": ok.headers["etag"]})
    assert again.status_code == 304


def test_unknown_routes_and_tokens(standin: GitHubStandin) -> None:
    auth = {"Authorization": f"token {standin.token}"}
    assert httpx.get(f"{standin.api_url}/repos/{REPO}/nonsense", headers=auth).status_code == 404
    assert httpx.get(f"{standin.api_url}/repos/acme/nope", headers=auth).status_code == 404
    assert httpx.get(f"{standin.api_url}/repos/{REPO}/issues").status_code == 401
    assert standin.request_count("GET /repos/{owner}/{repo}/issues", status=401) == 1
    standin.add_token("second-token", "intake-bot")
    with GitHub("second-token", base_url=standin.api_url, auto_retry=False) as gh:
        assert gh.rest.users.get_authenticated().parsed_data.login == "intake-bot"
        gh.rest.issues.create_comment("acme", "widgets", standin.create_issue(REPO, "x"),
                                      body="hi")
    assert standin.writes[0].actor == "intake-bot"


def test_stop_closes_kept_alive_connections(tmp_path: Path) -> None:
    standin = GitHubStandin(tmp_path).start()
    standin.create_repo("acme", "widgets")
    client = httpx.Client(headers={"Authorization": f"token {standin.token}"})
    url = f"{standin.api_url}/repos/{REPO}"
    assert client.get(url).status_code == 200
    standin.stop()
    with pytest.raises(httpx.TransportError):
        client.get(url)
    client.close()


def test_secondary_rate_limit_fault(standin: GitHubStandin, gh: GitHub) -> None:
    standin.faults.secondary_rate_limit(1, retry_after_s=3, match=r"^GET .*/issues$")
    with pytest.raises(SecondaryRateLimitExceeded) as limited:
        gh.rest.issues.list_for_repo("acme", "widgets")
    response = limited.value.response
    assert response.status_code == 403 and response.headers["retry-after"] == "3"
    assert "secondary rate limit" in response.json()["message"]
    assert limited.value.retry_after.total_seconds() == 3
    assert gh.rest.issues.list_for_repo("acme", "widgets").status_code == 200
    route = "GET /repos/{owner}/{repo}/issues"
    assert standin.request_count(route) == 2
    assert standin.request_count(route, status=403) == 1


def test_secondary_rate_limit_is_retried_by_githubkit(standin: GitHubStandin) -> None:
    standin.faults.secondary_rate_limit(1, retry_after_s=1)
    with GitHub(standin.token, base_url=standin.api_url) as gh:
        assert gh.rest.repos.get("acme", "widgets").status_code == 200
    assert [r.status for r in standin.requests] == [403, 200]
    assert standin.requests[1].at - standin.requests[0].at >= 0.9


def test_primary_rate_limit_fault(standin: GitHubStandin, gh: GitHub) -> None:
    standin.faults.primary_rate_limit(reset_in_s=2)
    with pytest.raises(PrimaryRateLimitExceeded) as limited:
        gh.rest.repos.get("acme", "widgets")
    headers = limited.value.response.headers
    assert headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(headers["x-ratelimit-reset"]) - time.time() <= 3
    assert 0 < limited.value.retry_after.total_seconds() <= 3
    with pytest.raises(PrimaryRateLimitExceeded):  # until the reset, everything fails
        gh.rest.issues.list_for_repo("acme", "widgets")


def test_exhausted_window_answers_403_until_reset(tmp_path: Path) -> None:
    with GitHubStandin(tmp_path, rate_limit=2, rate_limit_window_s=60) as small:
        small.create_repo("acme", "widgets")
        with GitHub(small.token, base_url=small.api_url, auto_retry=False) as gh:
            gh.rest.repos.get("acme", "widgets")
            gh.rest.repos.get("acme", "widgets")
            with pytest.raises(PrimaryRateLimitExceeded):
                gh.rest.repos.get("acme", "widgets")
            core = gh.rest.rate_limit.get().parsed_data.resources.core
    assert (core.limit, core.used, core.remaining) == (2, 2, 0)


@pytest.mark.parametrize(("inject", "status"), [
    (lambda s: s.faults.too_many_requests(1, retry_after_s=None), 429),
    (lambda s: s.faults.server_error(1), 500),
    (lambda s: s.faults.server_error(1, status=502), 502),
])
def test_error_faults(standin: GitHubStandin, gh: GitHub, inject, status: int) -> None:
    inject(standin)
    with pytest.raises(RequestFailed) as failed:
        gh.rest.repos.get("acme", "widgets")
    assert failed.value.response.status_code == status
    assert gh.rest.repos.get("acme", "widgets").status_code == 200


def test_concurrent_writes_are_all_applied(standin: GitHubStandin) -> None:
    number = standin.create_issue(REPO, "Busy")

    def worker(index: int) -> None:
        with GitHub(standin.token, base_url=standin.api_url, auto_retry=False) as gh:
            for step in range(5):
                gh.rest.issues.create_comment("acme", "widgets", number, body=f"{index}-{step}")
                gh.rest.issues.add_labels("acme", "widgets", number,
                                          data={"labels": [f"l{index}-{step}"]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(standin.comments(REPO, number)) == 30
    assert len(standin.labels(REPO, number)) == 30
    assert len({c.id for c in standin.comments(REPO, number)}) == 30


# -- git over smart HTTP ------------------------------------------------------------------


def test_clone_then_push_needs_the_token(standin: GitHubStandin, tmp_path: Path) -> None:
    env = _git_env(tmp_path)
    work = tmp_path / "work"
    _git(env, "clone", standin.git_url(REPO), str(work))
    assert (work / "src" / "app.py").read_text() == "print('hi')\n"
    _git(env, "switch", "-c", "ai-factory/issue-7", cwd=work)
    (work / "feature.txt").write_text("done\n")
    _git(env, "add", "feature.txt", cwd=work)
    _git(env, "commit", "-m", "Add feature", cwd=work)

    refused = _git(env, "push", "origin", "ai-factory/issue-7", cwd=work, check=False)
    wrong = _git({**env, "STANDIN_TOKEN": "wrong-token"}, "-c", f"credential.helper={TOKEN_HELPER}",
                 "push", "origin", "ai-factory/issue-7", cwd=work, check=False)
    assert refused.returncode != 0 and wrong.returncode != 0
    assert "ai-factory/issue-7" not in standin.branches(REPO)

    _git({**env, "STANDIN_TOKEN": standin.token}, "-c", f"credential.helper={TOKEN_HELPER}",
         "push", "origin", "ai-factory/issue-7", cwd=work)

    assert standin.read_file(REPO, "ai-factory/issue-7", "feature.txt") == b"done\n"
    assert standin.commit_messages(REPO, "ai-factory/issue-7")[0] == "Add feature"
    assert standin.request_count("git POST git-receive-pack", status=200) == 1


def test_push_with_askpass_and_large_chunked_pack(standin: GitHubStandin, tmp_path: Path) -> None:
    env = _git_env(tmp_path)
    work = tmp_path / "work"
    _git(env, "clone", standin.git_url(REPO), str(work))
    blob = os.urandom(3 * 1024 * 1024)  # over http.postBuffer, so git sends it chunked
    (work / "big.bin").write_bytes(blob)
    _git(env, "add", "big.bin", cwd=work)
    _git(env, "commit", "-m", "Add big file", cwd=work)
    askpass = tmp_path / "askpass.sh"
    askpass.write_text('#!/bin/sh\ncase "$1" in Username*) echo x-access-token;;'
                       ' *) echo "$STANDIN_TOKEN";; esac\n')
    askpass.chmod(0o700)

    _git({**env, "GIT_ASKPASS": str(askpass), "STANDIN_TOKEN": standin.token},
         "push", "origin", "HEAD:big", cwd=work)

    assert standin.read_file(REPO, "big", "big.bin") == blob
    again = tmp_path / "again"
    _git(env, "clone", "--branch", "big", standin.git_url(REPO), str(again))
    assert (again / "big.bin").read_bytes() == blob


def test_gzip_request_body_reaches_the_backend(standin: GitHubStandin) -> None:
    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    request = pkt("command=ls-refs\n") + b"0001" + pkt("ref-prefix refs/heads/\n") + b"0000"
    response = httpx.post(
        f"{standin.git_url(REPO)}/git-upload-pack", content=gzip.compress(request),
        headers={"Content-Type": "application/x-git-upload-pack-request",
                 "Content-Encoding": "gzip", "Git-Protocol": "version=2"},
    )
    assert response.status_code == 200
    assert f"{standin.branches(REPO)['main']} refs/heads/main".encode() in response.content


# -- webhooks -----------------------------------------------------------------------------


def test_signature_matches_githubs_documented_vector() -> None:
    assert signature_256("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_send_webhook_signs_githubs_way(standin: GitHubStandin) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory"], labeled_by="alice")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    _Receiver.received = []
    try:
        payload = standin.issues_webhook_payload(REPO, number, "labeled", sender="alice",
                                                 label="ai-factory")
        delivery = send_webhook(f"http://127.0.0.1:{server.server_port}/webhooks/github",
                                "issues", payload, "s3cret", delivery_id="d-1")
    finally:
        server.shutdown()
        server.server_close()
    headers, body = _Receiver.received[0]
    assert delivery.status == 202
    assert headers["X-GitHub-Event"] == "issues" and headers["X-GitHub-Delivery"] == "d-1"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert verify("s3cret", body, headers["X-Hub-Signature-256"])
    event = parse_obj("issues", json.loads(body))
    assert (event.action, event.issue.number, event.sender.login) == ("labeled", number, "alice")


@pytest.mark.parametrize("action", ["labeled", "unlabeled", "closed"])
def test_issues_payloads_parse_as_githubs(standin: GitHubStandin, action: str) -> None:
    number = standin.create_issue(REPO, "Fix", labels=["ai-factory"], labeled_by="alice")
    label = "ai-factory" if action != "closed" else None
    payload = standin.issues_webhook_payload(REPO, number, action, sender="alice", label=label)
    event = parse_obj("issues", payload)
    assert event.action == action
    assert event.repository.full_name == REPO
    if label:
        assert event.label is not None and event.label.name == "ai-factory"


# -- a pull's follow-up: reviews, checks, Actions, mergeability -------------------------

APP_PY = "a = 1\nb = 2\nc = 3\n"


@pytest.fixture
def pull(standin: GitHubStandin, gh: GitHub) -> int:
    """An open pull of branch ai-factory/issue-1 (src/app.py line 2 and notes.md changed)."""
    standin.commit(REPO, {"src/app.py": APP_PY}, message="Add app")
    standin.commit(REPO, {"src/app.py": "a = 1\nb = 20\nc = 3\n", "notes.md": "n\n"},
                   branch="ai-factory/issue-1", message="Change b")
    return gh.rest.pulls.create("acme", "widgets", title="Fix #1", head="ai-factory/issue-1",
                                base="main", body="Closes #1").parsed_data.number


REVIEW_THREADS = """
query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      mergeable headRefOid
      reviewThreads(first: 100) {
        nodes {
          id isResolved isOutdated path line resolvedBy { login }
          comments(first: 100) { nodes { databaseId body author { login } } }
        }
      }
    }
  }
}"""


def _threads(gh: GitHub, number: int) -> list[dict]:
    data = gh.graphql(REVIEW_THREADS, {"owner": "acme", "name": "widgets", "number": number})
    return data["repository"]["pullRequest"]["reviewThreads"]["nodes"]


def test_pull_reports_heads_and_computes_mergeability_lazily(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    standin.commit(REPO, {"x.txt": "x\n"}, branch="second")
    made = gh.rest.pulls.create("acme", "widgets", title="Second", head="second",
                                base="main").parsed_data
    first = gh.rest.pulls.get("acme", "widgets", made.number).parsed_data
    got = gh.rest.pulls.get("acme", "widgets", pull).parsed_data
    control = standin.pull(REPO, pull)

    branches = standin.branches(REPO)
    # The POST answers null and starts GitHub's background job; the next read has it.
    assert (made.mergeable, made.mergeable_state) == (None, "unknown")
    assert (first.mergeable, first.mergeable_state, first.rebaseable) == (True, "clean", True)
    assert (got.head.sha, got.base.sha) == (branches["ai-factory/issue-1"], branches["main"])
    assert (got.state, got.merged, got.review_comments, got.merged_by) == (
        "open", False, 0, None)
    assert {k: control[k] for k in ("state", "merged", "mergeable", "mergeable_state")} == {
        "state": "open", "merged": False, "mergeable": True, "mergeable_state": "clean"}
    assert control["head"]["sha"] == got.head.sha and control["number"] == pull
    listed = gh.rest.pulls.list("acme", "widgets", state="all",
                                head="acme:ai-factory/issue-1").parsed_data
    assert [p.number for p in listed] == [pull]
    assert gh.rest.pulls.list("acme", "widgets", state="closed").parsed_data == []
    assert not standin.writes_of(WriteKind.REVIEW_COMMENT)  # the control API writes nothing
    with pytest.raises(ValueError, match="not a pull request"):
        standin.pull(REPO, standin.create_issue(REPO, "An issue"))


def test_reviews_comments_and_replies_land_in_their_threads(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    review_id = standin.review(REPO, pull, by="alice", state="CHANGES_REQUESTED",
                               body="Two things", comments=[
                                   {"path": "src/app.py", "line": 2, "body": "Why 20?"},
                                   {"path": "notes.md", "line": 1, "body": "Drop this"},
                               ])
    single = standin.review_comment(REPO, pull, by="bob", body="Whole file?",
                                    path="notes.md")
    why, drop = (c.id for c in standin.review_comments(REPO, pull)[:2])
    human_reply = standin.review_comment(REPO, pull, by="alice", body="Still?",
                                         in_reply_to=why)

    reply = gh.rest.pulls.create_reply_for_review_comment(
        "acme", "widgets", pull, why, body="Fixed in the next push").parsed_data
    on_reply = gh.rest.pulls.create_reply_for_review_comment(
        "acme", "widgets", pull, human_reply, body="Answering the reply").parsed_data

    reviews = gh.rest.pulls.list_reviews("acme", "widgets", pull).parsed_data
    assert [(r.id == review_id, r.state, r.user and r.user.login) for r in reviews[:2]] == [
        (True, "CHANGES_REQUESTED", "alice"), (False, "COMMENTED", "bob")]
    assert reviews[0].commit_id == standin.branches(REPO)["ai-factory/issue-1"]
    assert len(reviews) == 5  # every lone comment and reply is a review of its own
    comments = gh.rest.pulls.list_review_comments("acme", "widgets", pull).parsed_data
    assert [(c.path, c.line, c.original_line, c.in_reply_to_id or None, c.body)
            for c in comments] == [
        ("src/app.py", 2, 2, None, "Why 20?"),
        ("notes.md", 1, 1, None, "Drop this"),
        ("notes.md", None, None, None, "Whole file?"),
        ("src/app.py", 2, 2, why, "Still?"),
        ("src/app.py", 2, 2, why, "Fixed in the next push"),
        ("src/app.py", 2, 2, why, "Answering the reply"),  # a reply to a reply: same thread
    ]
    assert comments[0].pull_request_review_id == review_id
    assert comments[0].diff_hunk.endswith("+b = 20") and comments[0].subject_type == "line"
    assert comments[2].subject_type == "file" and single == comments[2].id
    assert (reply.user and reply.user.login, reply.commit_id) == (standin.token_user,
                                                                  comments[0].commit_id)
    assert on_reply.in_reply_to_id == why
    assert reply.html_url.endswith(f"/pull/{pull}#discussion_r{reply.id}")
    got = gh.rest.pulls.get_review_comment("acme", "widgets", reply.id).parsed_data
    assert got.body == "Fixed in the next push"
    of_review = gh.rest.pulls.list_comments_for_review("acme", "widgets", pull,
                                                       review_id).parsed_data
    assert [c.id for c in of_review] == [why, drop]
    assert gh.rest.pulls.get_review("acme", "widgets", pull, review_id).parsed_data.body == (
        "Two things")
    assert [(w.kind, w.body) for w in standin.writes_of(WriteKind.REVIEW_COMMENT)] == [
        (WriteKind.REVIEW_COMMENT, "Fixed in the next push"),
        (WriteKind.REVIEW_COMMENT, "Answering the reply")]
    assert gh.rest.pulls.get("acme", "widgets", pull).parsed_data.review_comments == 6

    standin.resolve_thread(REPO, pull, drop, by="alice")
    threads = _threads(gh, pull)
    assert [(t["path"], t["line"], t["isResolved"]) for t in threads] == [
        ("src/app.py", 2, False), ("notes.md", 1, True), ("notes.md", None, False)]
    assert threads[1]["resolvedBy"] == {"login": "alice"}
    assert [(n["databaseId"], n["author"]["login"]) for n in threads[0]["comments"]["nodes"]] == [
        (why, "alice"), (human_reply, "alice"), (reply.id, standin.token_user),
        (on_reply.id, standin.token_user)]


def test_review_comments_must_sit_in_the_diff(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    head = standin.branches(REPO)["ai-factory/issue-1"]
    with pytest.raises(ApiError) as outside:
        standin.review(REPO, pull, by="alice", comments=[
            {"path": "README.md", "line": 1, "body": "Not in this pull"}])
    with pytest.raises(ApiError):
        standin.review(REPO, pull, by=standin.pull(REPO, pull)["user"]["login"],
                       state="APPROVED")  # nobody approves their own pull
    with pytest.raises(RequestFailed) as far:
        gh.rest.pulls.create_review_comment("acme", "widgets", pull, body="Here", commit_id=head,
                                            path="src/app.py", line=40)
    with pytest.raises(RequestFailed) as unknown:
        gh.rest.pulls.create_reply_for_review_comment("acme", "widgets", pull, 12345,
                                                      body="Hm")
    made = gh.rest.pulls.create_review_comment("acme", "widgets", pull, body="Nit",
                                               commit_id=head, path="src/app.py",
                                               line=3).parsed_data

    assert outside.value.status == 422 and "not part of the diff" in str(outside.value)
    assert far.value.response.status_code == 422
    assert unknown.value.response.status_code == 404
    assert (made.line, made.position, made.in_reply_to_id or None) == (3, 4, None)
    assert standin.reviews(REPO, pull)[-1].state == "COMMENTED"


def test_issue_comments_on_a_pull(standin: GitHubStandin, gh: GitHub, pull: int) -> None:
    standin.comment(REPO, pull, "Please also update the docs", by="alice")
    made = gh.rest.issues.create_comment("acme", "widgets", pull, body="On it").parsed_data
    listed = gh.rest.issues.list_comments("acme", "widgets", pull).parsed_data
    assert [(c.user and c.user.login, c.body) for c in listed] == [
        ("alice", "Please also update the docs"), (standin.token_user, "On it")]
    assert made.html_url.endswith(f"/pull/{pull}#issuecomment-{made.id}")
    assert gh.rest.pulls.get("acme", "widgets", pull).parsed_data.comments == 2


def test_check_runs_list_by_sha_branch_and_name(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    head = standin.branches(REPO)["ai-factory/issue-1"]
    lint = standin.check_run(REPO, head, name="lint", conclusion="success",
                             title="No problems")
    first = standin.check_run(REPO, head, name="tests", title="1 failed",
                              summary="test_b failed", text="assert 20 == 2", log="FAILED")
    again = standin.check_run(REPO, head, name="tests", log="FAILED again")
    standin.check_run(REPO, "main", name="tests", conclusion="success", log="ok")

    by_sha = gh.rest.checks.list_for_ref("acme", "widgets", head).parsed_data
    by_branch = gh.rest.checks.list_for_ref("acme", "widgets", "ai-factory/issue-1").parsed_data
    everything = gh.rest.checks.list_for_ref("acme", "widgets", head, filter_="all").parsed_data
    named = gh.rest.checks.list_for_ref("acme", "widgets", head, check_name="tests",
                                        filter_="all").parsed_data
    paged = gh.rest.checks.list_for_ref("acme", "widgets", head, per_page=1)

    assert [(r.name, r.conclusion) for r in by_sha.check_runs] == [("tests", "failure"),
                                                                   ("lint", "success")]
    assert by_sha.total_count == 2 and by_branch == by_sha
    assert [r.id for r in everything.check_runs] == [again["check_run_id"],
                                                     first["check_run_id"], lint["check_run_id"]]
    assert [r.id for r in named.check_runs] == [again["check_run_id"], first["check_run_id"]]
    assert paged.parsed_data.total_count == 2 and len(paged.parsed_data.check_runs) == 1
    assert 'rel="next"' in paged.headers["link"]
    run = gh.rest.checks.get("acme", "widgets", first["check_run_id"]).parsed_data
    assert (run.output.title, run.output.summary, run.output.text) == (
        "1 failed", "test_b failed", "assert 20 == 2")
    assert [p.number for p in run.pull_requests] == [pull]
    assert run.pull_requests[0].head.sha == head and run.check_suite
    assert run.app and run.app.slug == "github-actions"
    assert first["check_suite_id"] == again["check_suite_id"] != lint["check_suite_id"]
    suites = gh.rest.checks.list_suites_for_ref("acme", "widgets", head).parsed_data
    assert [(s.id, s.conclusion, s.head_branch) for s in suites.check_suites] == [
        (lint["check_suite_id"], "success", "ai-factory/issue-1"),
        (first["check_suite_id"], "failure", "ai-factory/issue-1")]
    suite = gh.rest.checks.get_suite("acme", "widgets", first["check_suite_id"]).parsed_data
    assert suite.latest_check_runs_count == 1 and suite.head_sha == head
    in_suite = gh.rest.checks.list_for_suite("acme", "widgets", suite.id).parsed_data
    assert [r.id for r in in_suite.check_runs] == [again["check_run_id"]]
    with pytest.raises(RequestFailed) as missing:
        gh.rest.checks.list_for_ref("acme", "widgets", "no-such-branch")
    assert missing.value.response.status_code == 422
    assert "No commit found" in missing.value.response.json()["message"]


def test_job_logs_redirect_to_a_signed_download(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    head = standin.branches(REPO)["ai-factory/issue-1"]
    log = "collecting ... collected 3 items\nFAILED tests/test_app.py::test_b - assert 20 == 2"
    ids = standin.check_run(REPO, head, name="tests", log=log, workflow="CI")
    standin.check_run(REPO, head, name="lint", conclusion="success", log="ok", workflow="CI")

    run = gh.rest.checks.get("acme", "widgets", ids["check_run_id"]).parsed_data
    workflow_run = gh.rest.actions.get_workflow_run("acme", "widgets", ids["run_id"]).parsed_data
    jobs = gh.rest.actions.list_jobs_for_workflow_run("acme", "widgets", ids["run_id"]).parsed_data
    job = gh.rest.actions.get_job_for_workflow_run("acme", "widgets", ids["job_id"]).parsed_data
    auth = {"Authorization": f"token {standin.token}"}
    redirect = httpx.get(f"{standin.api_url}/repos/{REPO}/actions/jobs/{ids['job_id']}/logs",
                         headers=auth)
    downloaded = httpx.get(redirect.headers["location"])  # no token: the URL is signed
    through_githubkit = gh.rest.actions.download_job_logs_for_workflow_run(
        "acme", "widgets", ids["job_id"])

    assert ids["job_id"] == ids["check_run_id"]
    assert run.details_url == run.html_url == job.html_url == (
        f"{standin.web_url}/acme/widgets/actions/runs/{ids['run_id']}/job/{ids['job_id']}")
    assert job.check_run_url == f"{standin.api_url}/repos/{REPO}/check-runs/{run.id}"
    assert (job.run_id, job.conclusion, job.head_sha) == (ids["run_id"], "failure", head)
    assert [(s.name, s.conclusion) for s in job.steps or []] == [
        ("Set up job", "success"), ("Run tests", "failure"), ("Complete job", "success")]
    assert (workflow_run.head_sha, workflow_run.conclusion, workflow_run.event) == (
        head, "failure", "pull_request")
    assert [p.number for p in workflow_run.pull_requests or []] == [pull]
    assert workflow_run.check_suite_id == ids["check_suite_id"]
    assert jobs.total_count == 2 and [j.name for j in jobs.jobs] == ["tests", "lint"]
    assert redirect.status_code == 302 and redirect.content == b""
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"].startswith("text/plain")
    text = downloaded.content.decode("utf-8")
    assert text.startswith("\ufeff")  # GitHub's logs start with a BOM
    lines = text.lstrip("\ufeff").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == log.splitlines()
    assert all(line[:4].isdigit() and line.split(" ", 1)[0].endswith("Z") for line in lines)
    assert through_githubkit.status_code == 200 and through_githubkit.text == text
    forged = redirect.headers["location"].replace("sig=", "sig=0")
    assert httpx.get(forged).status_code == 403
    assert httpx.get(redirect.headers["location"].split("?")[0]).status_code == 403


def test_a_rerun_replaces_the_failed_job(standin: GitHubStandin, gh: GitHub, pull: int) -> None:
    failed = standin.check_run(REPO, "ai-factory/issue-1", name="tests", log="FAILED")
    standin.check_run(REPO, "ai-factory/issue-1", name="lint", conclusion="success", log="ok")
    rerun = standin.check_run(REPO, "ai-factory/issue-1", name="tests", conclusion="success",
                              log="passed")

    run = gh.rest.actions.get_workflow_run("acme", "widgets", failed["run_id"]).parsed_data
    latest = gh.rest.actions.list_jobs_for_workflow_run("acme", "widgets",
                                                        failed["run_id"]).parsed_data
    every = gh.rest.actions.list_jobs_for_workflow_run("acme", "widgets", failed["run_id"],
                                                       filter_="all").parsed_data
    suite = gh.rest.checks.get_suite("acme", "widgets", failed["check_suite_id"]).parsed_data

    assert rerun["run_id"] == failed["run_id"] and rerun["job_id"] != failed["job_id"]
    assert (run.conclusion, run.run_attempt, suite.conclusion) == ("success", 2, "success")
    assert [(j.name, j.conclusion, j.run_attempt) for j in latest.jobs] == [
        ("lint", "success", 1), ("tests", "success", 2)]
    assert [j.id for j in every.jobs] == [failed["job_id"], latest.jobs[0].id, rerun["job_id"]]


def test_push_over_http_moves_the_pull_and_outdates_changed_comments(
    standin: GitHubStandin, gh: GitHub, pull: int, tmp_path: Path
) -> None:
    old_head = standin.branches(REPO)["ai-factory/issue-1"]
    standin.review(REPO, pull, by="alice", state="CHANGES_REQUESTED", body="See inline",
                   comments=[{"path": "src/app.py", "line": 2, "body": "Why 20?"},
                             {"path": "notes.md", "line": 1, "body": "Fine"}])
    env = {**_git_env(tmp_path), "STANDIN_TOKEN": standin.token}
    work = tmp_path / "work"
    _git(env, "clone", "--branch", "ai-factory/issue-1", standin.git_url(REPO), str(work))
    (work / "src" / "app.py").write_text("a = 1\nb = 2\nc = 3\n# keep b\n")
    _git(env, "commit", "-am", "Address review", cwd=work)
    _git(env, "-c", f"credential.helper={TOKEN_HELPER}", "push", "origin",
         "ai-factory/issue-1", cwd=work)
    new_head = standin.branches(REPO)["ai-factory/issue-1"]

    got = gh.rest.pulls.get("acme", "widgets", pull).parsed_data
    comments = gh.rest.pulls.list_review_comments("acme", "widgets", pull).parsed_data
    payload = standin.pull_request_payload(REPO, pull, "synchronize", sender=standin.token_user)

    assert new_head != old_head and got.head.sha == new_head
    assert (got.mergeable, got.mergeable_state) == (None, "unknown")  # computing again
    assert [(c.path, c.line, c.original_line, c.commit_id) for c in comments] == [
        ("src/app.py", None, 2, old_head),  # its file changed: outdated
        ("notes.md", 1, 1, new_head),  # its file did not: it follows the head
    ]
    assert [t["isOutdated"] for t in _threads(gh, pull)] == [True, False]
    event = parse_obj("pull_request", payload)
    assert isinstance(event, WebhookPullRequestSynchronize)
    assert (event.before, event.after, event.pull_request.head.sha) == (old_head, new_head,
                                                                          new_head)


def test_conflicting_push_to_base_makes_the_pull_dirty(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    gh.rest.pulls.get("acme", "widgets", pull)  # settles the first computation
    ids = standin.check_run(REPO, "ai-factory/issue-1", name="tests", log="FAILED")
    unstable = gh.rest.pulls.get("acme", "widgets", pull).parsed_data
    standin.check_run(REPO, "ai-factory/issue-1", name="tests", conclusion="success", log="ok")
    clean = gh.rest.pulls.get("acme", "widgets", pull).parsed_data

    standin.commit(REPO, {"src/app.py": "a = 1\nb = 200\nc = 3\n"}, message="Conflict")
    asked = gh.rest.pulls.get("acme", "widgets", pull).parsed_data
    dirty = gh.rest.pulls.get("acme", "widgets", pull).parsed_data

    assert ids["run_id"] is not None
    assert (unstable.mergeable, unstable.mergeable_state) == (True, "unstable")
    assert (clean.mergeable, clean.mergeable_state) == (True, "clean")
    assert (asked.mergeable, asked.mergeable_state) == (None, "unknown")
    assert (dirty.mergeable, dirty.mergeable_state, dirty.rebaseable) == (False, "dirty", False)
    assert dirty.base.sha == standin.branches(REPO)["main"]
    assert standin.pull(REPO, pull)["mergeable_state"] == "dirty"
    with pytest.raises(ApiError) as refused:
        standin.close_pull(REPO, pull, by="alice", merged=True)
    assert refused.value.status == 405
    graph = gh.graphql(REVIEW_THREADS, {"owner": "acme", "name": "widgets", "number": pull})
    assert graph["repository"]["pullRequest"]["mergeable"] == "CONFLICTING"


def test_eager_mergeability(tmp_path: Path) -> None:
    with GitHubStandin(tmp_path, lazy_mergeable=False) as eager:
        eager.create_repo("acme", "widgets")
        eager.commit(REPO, {"x.txt": "x\n"}, branch="feature")
        with GitHub(eager.token, base_url=eager.api_url, auto_retry=False) as gh:
            made = gh.rest.pulls.create("acme", "widgets", title="X", head="feature",
                                        base="main").parsed_data
    assert (made.mergeable, made.mergeable_state) == (True, "clean")


def test_merging_and_closing(standin: GitHubStandin, gh: GitHub, pull: int) -> None:
    head = standin.branches(REPO)["ai-factory/issue-1"]
    standin.commit(REPO, {"other.txt": "o\n"}, message="Unrelated")
    standin.close_pull(REPO, pull, by="maria", merged=True)

    response = gh.rest.pulls.get("acme", "widgets", pull)
    merged = response.parsed_data
    main = standin.branches(REPO)["main"]
    # API version 2026-03-10 (githubkit's models) dropped merge_commit_sha; 2022-11-28 has it.
    assert (merged.state, merged.merged, response.json()["merge_commit_sha"]) == (
        "closed", True, main)
    assert merged.merged_by and merged.merged_by.login == "maria"
    assert merged.mergeable is None and merged.closed_at is not None
    assert standin.commit_messages(REPO, "main")[0] == (
        f"Merge pull request #{pull} from acme/ai-factory/issue-1")
    assert standin.read_file(REPO, "main", "notes.md") == b"n\n"
    assert standin.read_file(REPO, "main", "other.txt") == b"o\n"
    assert head in git_rev_list(standin, "main")
    assert [(e.event, e.actor.login, e.commit_id) for e in standin.events(REPO, pull)] == [
        ("merged", "maria", main), ("closed", "maria", main)]
    closed = parse_obj("pull_request", standin.pull_request_payload(
        REPO, pull, "closed", sender="maria"))
    assert isinstance(closed, WebhookPullRequestClosed) and closed.pull_request.merged
    assert [p.number for p in gh.rest.pulls.list("acme", "widgets",
                                                   state="closed").parsed_data] == [pull]

    standin.commit(REPO, {"y.txt": "y\n"}, branch="other")
    second = gh.rest.pulls.create("acme", "widgets", title="Y", head="other",
                                  base="main").parsed_data.number
    standin.close_pull(REPO, second, by="maria")
    not_merged = standin.pull(REPO, second)
    assert (not_merged["state"], not_merged["merged"], not_merged["merged_by"]) == (
        "closed", False, None)
    assert standin.read_file(REPO, "main", "y.txt") is None


def git_rev_list(standin: GitHubStandin, branch: str) -> list[str]:
    out = subprocess.run(["git", f"--git-dir={standin.repo_path(REPO)}", "rev-list", branch],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_follow_up_routes_keep_githubs_permissions(
    standin: GitHubStandin, gh: GitHub, pull: int
) -> None:
    ids = standin.check_run(REPO, "ai-factory/issue-1", name="tests", log="FAILED")
    comment = standin.review_comment(REPO, pull, by="alice", body="Hm", path="notes.md",
                                     line=1)
    standin.add_token("stranger-token", "stranger")
    standin.set_permission(REPO, "stranger", "none")
    standin.add_token("reader-token", "rita")
    standin.set_permission(REPO, "rita", "read")
    paths = [f"pulls/{pull}", f"pulls/{pull}/reviews", f"pulls/{pull}/comments",
             "commits/ai-factory/issue-1/check-runs", f"actions/runs/{ids['run_id']}/jobs",
             f"actions/jobs/{ids['job_id']}/logs"]

    def get(token: str | None, path: str) -> int:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.get(f"{standin.api_url}/repos/{REPO}/{path}",
                         headers=headers).status_code

    assert [get("stranger-token", p) for p in paths] == [404] * len(paths)
    assert [get(None, p) for p in paths] == [401] * len(paths)
    assert [get("reader-token", p) for p in paths] == [200] * 5 + [302]
    assert [get(standin.token, p) for p in paths] == [200] * 5 + [302]
    with GitHub("reader-token", base_url=standin.api_url, auto_retry=False) as rita:
        # Anyone who can read a repository may comment on its pulls, as on GitHub.
        rita.rest.pulls.create_reply_for_review_comment("acme", "widgets", pull, comment,
                                                        body="Me too")
    with (GitHub("stranger-token", base_url=standin.api_url, auto_retry=False) as stranger,
          pytest.raises(RequestFailed) as hidden):
        stranger.rest.pulls.create_reply_for_review_comment("acme", "widgets", pull, comment,
                                                            body="Hi")
    assert hidden.value.response.status_code == 404
    assert [w.actor for w in standin.writes_of(WriteKind.REVIEW_COMMENT)] == ["rita"]


@pytest.mark.parametrize(("event", "model"), [
    ("pull_request.opened", "WebhookPullRequestOpened"),
    ("pull_request.synchronize", "WebhookPullRequestSynchronize"),
    ("pull_request.closed", "WebhookPullRequestClosed"),
    ("pull_request_review.submitted", "WebhookPullRequestReviewSubmitted"),
    ("pull_request_review_comment.created", "WebhookPullRequestReviewCommentCreated"),
    ("issue_comment.created", "WebhookIssueCommentCreated"),
    ("check_run.completed", "WebhookCheckRunCompleted"),
    ("check_suite.completed", "WebhookCheckSuiteCompleted"),
    ("workflow_run.completed", "WebhookWorkflowRunCompleted"),
])
def test_pull_follow_up_payloads_parse_as_githubs(
    standin: GitHubStandin, pull: int, event: str, model: str
) -> None:
    name, action = event.split(".")
    review_id = standin.review(REPO, pull, by="alice", state="CHANGES_REQUESTED", body="",
                               comments=[{"path": "src/app.py", "line": 2, "body": "Why?"}])
    root = standin.review_comments(REPO, pull)[0].id
    reply = standin.review_comment(REPO, pull, by="bob", body="Agreed", in_reply_to=root)
    standin.comment(REPO, pull, "And the docs", by="alice")
    standin.commit(REPO, {"notes.md": "more\n"}, branch="ai-factory/issue-1")
    ids = standin.check_run(REPO, "ai-factory/issue-1", name="tests", log="FAILED")
    if action == "closed":
        standin.close_pull(REPO, pull, by="maria", merged=True)
    builders = {
        "pull_request": lambda: standin.pull_request_payload(REPO, pull, action,
                                                             sender="alice"),
        "pull_request_review": lambda: standin.pull_request_review_payload(
            REPO, pull, action, sender="alice", review_id=review_id),
        "pull_request_review_comment": lambda: standin.pull_request_review_comment_payload(
            REPO, pull, action, sender="bob", comment_id=reply),
        "issue_comment": lambda: standin.issue_comment_payload(REPO, pull, action,
                                                               sender="alice"),
        "check_run": lambda: standin.check_run_payload(REPO, ids["check_run_id"], action,
                                                       sender="alice"),
        "check_suite": lambda: standin.check_suite_payload(REPO, ids["check_suite_id"],
                                                           action, sender="alice"),
        "workflow_run": lambda: standin.workflow_run_payload(REPO, ids["run_id"], action,
                                                             sender="alice"),
    }

    parsed = parse_obj(name, builders[name]())

    head = standin.branches(REPO)["ai-factory/issue-1"]
    assert type(parsed).__name__ == model and parsed.action == action
    assert parsed.repository and parsed.repository.full_name == REPO
    match name:
        case "pull_request":
            assert parsed.number == pull and parsed.pull_request.head.sha == head
            assert parsed.pull_request.merged is (action == "closed")
        case "pull_request_review":
            assert (parsed.review.state, parsed.review.body) == ("changes_requested", None)
            assert parsed.review.id == review_id and parsed.pull_request.number == pull
        case "pull_request_review_comment":
            comment = parsed.comment
            assert (comment.in_reply_to_id, comment.path, comment.line) == (root, "src/app.py",
                                                                             2)
        case "issue_comment":
            assert parsed.issue.pull_request and parsed.comment.body == "And the docs"
        case "check_run":
            run = parsed.check_run
            assert (run.conclusion, run.head_sha, run.check_suite.id) == (
                "failure", head, ids["check_suite_id"])
            assert [(p.number, p.head.sha, p.base.ref) for p in run.pull_requests] == [
                (pull, head, "main")]
        case "check_suite":
            assert parsed.check_suite.conclusion == "failure"
            assert [p.number for p in parsed.check_suite.pull_requests] == [pull]
        case "workflow_run":
            run = parsed.workflow_run
            assert (run.head_sha, run.conclusion, run.id) == (head, "failure", ids["run_id"])
            assert [p.number for p in run.pull_requests] == [pull]


def test_pull_follow_up_webhooks_are_signed(standin: GitHubStandin, pull: int) -> None:
    ids = standin.check_run(REPO, "ai-factory/issue-1", name="tests", log="FAILED")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    _Receiver.received = []
    url = f"http://127.0.0.1:{server.server_port}/webhooks/github"
    try:
        for event, payload in [
            ("check_run", standin.check_run_payload(REPO, ids["check_run_id"], "completed",
                                                    sender="alice")),
            ("workflow_run", standin.workflow_run_payload(REPO, ids["run_id"], "completed",
                                                          sender="alice")),
        ]:
            assert send_webhook(url, event, payload, "s3cret").status == 202
    finally:
        server.shutdown()
        server.server_close()
    for (headers, body), event in zip(_Receiver.received, ["check_run", "workflow_run"],
                                      strict=True):
        assert headers["X-GitHub-Event"] == event
        assert verify("s3cret", body, headers["X-Hub-Signature-256"])
        assert not verify("wrong", body, headers["X-Hub-Signature-256"])
        assert parse_obj(event, json.loads(body)).action == "completed"

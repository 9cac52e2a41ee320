"""A local GitHub stand-in for tests: REST API, git smart HTTP, and webhook senders.

Shaped like GitHub Enterprise on one port: the REST API under
`http://127.0.0.1:PORT/api/v3`, git at `http://127.0.0.1:PORT/<owner>/<repo>.git`
(pushes need the token as the Basic-auth password), web pages (`html_url`s) at
`http://127.0.0.1:PORT/<owner>/<repo>/issues/N` and `/pull/N`.

    with GitHubStandin(tmp_path) as github:
        github.create_repo("acme", "widgets", files={"README.md": "hi"})
        github.create_issue("acme/widgets", "Fix it", labels=["ai-factory"], labeled_by="alice")
        client = githubkit.GitHub(github.token, base_url=github.api_url)

Modules: `standin` (the class tests use), `state` and `models` (the world; a pull's
life after it opens in `pull_state`, checks and Actions in `check_state`, ids in
`ids`), `routes`, `pull_routes`, `calls` and `rest` (the API), `graphql_api` (GraphQL
at `/api/graphql`: an issue's text and its edits, a pull's review threads),
`payloads`, `issue_payloads` and `pull_payloads` (GitHub's JSON), `faults` (rate
limits and injected errors), `git_repos` and `git_http` (bare repositories and their
HTTP transport), `server` (the listener), `blobs` (signed job-log downloads),
`webhooks` (signed deliveries, `issues` bodies), `pulls_webhook` (pull, review,
comment, check and workflow run bodies), `fixtures` (pytest fixtures).

A pull's follow-up, in short:

    number = gh.rest.pulls.create(...).parsed_data.number      # or the factory does it
    github.review(REPO, number, by="alice", state="CHANGES_REQUESTED", body="...",
                  comments=[{"path": "src/app.py", "line": 2, "body": "why?"}])
    ids = github.check_run(REPO, head_sha, name="tests", log="FAILED test_x")
    payload = github.check_run_payload(REPO, ids["check_run_id"], "completed",
                                       sender="alice")
    send_webhook(url, "check_run", payload, secret)

githubkit note: `rest.issues.list_events(...).parsed_data` cannot parse
`closed`/`reopened` events (its union for that endpoint lacks them), here as on
real GitHub; read `.json()` for those.
"""

from .errors import ApiError
from .faults import FaultKind, Faults
from .models import (
    Comment,
    ContentEdit,
    Issue,
    IssueEvent,
    Permission,
    PullRequest,
    RequestRecord,
    Review,
    ReviewComment,
    ReviewThread,
    WriteKind,
    WriteRecord,
)
from .standin import GitHubStandin
from .webhooks import WebhookDelivery, issues_event, send_webhook, signature_256

__all__ = [
    "ApiError",
    "Comment",
    "ContentEdit",
    "FaultKind",
    "Faults",
    "GitHubStandin",
    "Issue",
    "IssueEvent",
    "Permission",
    "PullRequest",
    "RequestRecord",
    "Review",
    "ReviewComment",
    "ReviewThread",
    "WebhookDelivery",
    "WriteKind",
    "WriteRecord",
    "issues_event",
    "send_webhook",
    "signature_256",
]

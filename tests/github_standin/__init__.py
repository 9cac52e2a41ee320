"""A local GitHub stand-in for tests: REST API, git smart HTTP, and webhook senders.

Shaped like GitHub Enterprise on one port: the REST API under
`http://127.0.0.1:PORT/api/v3`, git at `http://127.0.0.1:PORT/<owner>/<repo>.git`
(pushes need the token as the Basic-auth password), web pages (`html_url`s) at
`http://127.0.0.1:PORT/<owner>/<repo>/issues/N` and `/pull/N`.

    with GitHubStandin(tmp_path) as github:
        github.create_repo("acme", "widgets", files={"README.md": "hi"})
        github.create_issue("acme/widgets", "Fix it", labels=["ai-factory"], labeled_by="alice")
        client = githubkit.GitHub(github.token, base_url=github.api_url)

Modules: `standin` (the class tests use), `state` and `models` (the world),
`routes` and `rest` (the API), `graphql_api` (GraphQL at `/api/graphql`: an issue's
text and its edits), `payloads` and `issue_payloads` (GitHub's JSON), `faults` (rate
limits and injected errors), `git_repos` and `git_http` (bare repositories and their
HTTP transport), `server` (the listener), `webhooks` (signed deliveries), `fixtures`
(pytest fixtures).

githubkit note: `rest.issues.list_events(...).parsed_data` cannot parse
`closed`/`reopened` events (its union for that endpoint lacks them), here as on
real GitHub; read `.json()` for those.
"""

from .faults import FaultKind, Faults
from .models import (
    Comment,
    ContentEdit,
    Issue,
    IssueEvent,
    Permission,
    PullRequest,
    RequestRecord,
    WriteKind,
    WriteRecord,
)
from .standin import GitHubStandin
from .webhooks import WebhookDelivery, issues_event, send_webhook, signature_256

__all__ = [
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
    "WebhookDelivery",
    "WriteKind",
    "WriteRecord",
    "issues_event",
    "send_webhook",
    "signature_256",
]

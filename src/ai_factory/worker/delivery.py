"""Delivery: push the item's branch and, when origin is on GitHub, open its pull request.

A remote counts as GitHub when its host is github.com or the host of
GITHUB_API_URL (GitHub Enterprise, or the test stand-in). Delivery is
idempotent: a second call for the same branch pushes again and reuses the open
pull request (refreshing its body) instead of opening another. Anywhere else
the result is ``"<remote>#<branch>"``, e.g. ``/srv/widgets#factory/1a2b3c4d``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from ai_factory.core.errors import FactoryError
from ai_factory.core.models import Source, WorkItem
from ai_factory.worker import followup
from ai_factory.worker.git import Remote
from ai_factory.worker.github import GitHubDeliveryClient, GitHubError, RetryPolicy
from ai_factory.worker.workspace import Workspace

log = logging.getLogger(__name__)

GITHUB_HOST = "github.com"
GITHUB_API_URL = "https://api.github.com"
MAX_BODY_CHARS = 60_000  # GitHub refuses bodies over 65,536 characters
MAX_LISTED_FILES = 100
_ISSUE_URL = re.compile(r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)/?$")


class DeliveryError(FactoryError):
    """The branch cannot be delivered (nothing to deliver, or no token for a pull request)."""


class DeliverySummary(BaseModel):
    """What the worker did, for the pull request body."""

    iterations: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    checked_spec: str = ""
    summary: str = ""
    tasks_done: int = 0
    tasks_total: int = 0
    files_changed: list[str] = Field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class GitHubRepo:
    api_url: str
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def github_repo(remote: Remote, github_api_url: str) -> GitHubRepo | None:
    """The GitHub repository `remote` points at, or None when it is not on GitHub."""
    host = (remote.hostname or "").lower()
    api_host = (urlsplit(github_api_url).hostname or "").lower()
    if not host:
        return None
    if host == api_host:
        api_url = github_api_url
    elif host == GITHUB_HOST:
        api_url = GITHUB_API_URL
    else:
        return None
    parts = [p for p in remote.path.strip("/").split("/") if p]
    if len(parts) < 2:
        return None
    return GitHubRepo(api_url=api_url.rstrip("/"), owner=parts[-2],
                      name=parts[-1].removesuffix(".git"))


def deliver(workspace: Workspace, item: WorkItem, summary: DeliverySummary, *,
            github_token: str | None, github_api_url: str,
            retry: RetryPolicy | None = None) -> str:
    """Push the branch; open (or reuse) its pull request on GitHub. Return where it landed.

    A follow-up pushes to its pull request's branch and answers the feedback instead.
    """
    if item.is_followup:
        return _deliver_followup(workspace, item, github_token=github_token,
                                 github_api_url=github_api_url, retry=retry)  # fmt: skip
    commits = workspace.commits_since_base()
    if not commits:
        raise DeliveryError(f"nothing to deliver: {workspace.branch} has no commits since"
                            f" {workspace.base_sha[:12]}")
    target = github_repo(workspace.remote, github_api_url)
    if target is not None and not github_token:
        raise DeliveryError(f"GITHUB_TOKEN is not set: cannot open a pull request on"
                            f" {target.full_name}")
    workspace.push()
    if target is None or github_token is None:
        location = f"{workspace.repo}#{workspace.branch}"
        log.info("delivery.pushed item=%s location=%s commits=%d", item.id, location,
                 len(commits))
        return location
    client = GitHubDeliveryClient(token=github_token, base_url=target.api_url, retry=retry)
    body = pull_request_body(item, summary, target)
    url = _open_or_reuse(client, target, item, workspace.branch, body)
    log.info("delivery.pull_request item=%s url=%s commits=%d", item.id, url, len(commits))
    return url


def _deliver_followup(workspace: Workspace, item: WorkItem, *, github_token: str | None,
                      github_api_url: str, retry: RetryPolicy | None) -> str:
    if not workspace.item_commits():
        raise DeliveryError(f"nothing to deliver: no new commit on {workspace.branch}")
    workspace.push()  # a fast-forward of the pull request's branch; never forced
    target = github_repo(workspace.remote, github_api_url)
    url = str(item.context.get("prUrl") or f"{workspace.repo}#{workspace.branch}")
    if target is None or github_token is None:
        return url
    client = GitHubDeliveryClient(token=github_token, base_url=target.api_url, retry=retry)
    try:
        followup.answer(client, target.owner, target.name, item, workspace)
    except GitHubError as exc:  # the commits are pushed; a missing reply is not a failure
        log.warning("delivery.followup_not_answered item=%s error=%s", item.id, exc)
    log.info("delivery.followup_pushed item=%s pull=%s", item.id, item.pr_number)
    return url


def _open_or_reuse(client: GitHubDeliveryClient, target: GitHubRepo, item: WorkItem, branch: str,
                   body: str) -> str:
    existing = client.open_pull(target.owner, target.name, branch=branch)
    if existing is None:
        try:
            created = client.create_pull(target.owner, target.name, title=item.title,
                                         head=branch, base=item.base_branch, body=body)
            return str(created["html_url"])
        except GitHubError as exc:
            # Another attempt may have opened it between our list and create.
            if exc.status != 422 or "already exists" not in str(exc):
                raise
            existing = client.open_pull(target.owner, target.name, branch=branch)
            if existing is None:
                raise
    try:
        client.update_pull_body(target.owner, target.name, int(existing["number"]), body)
    except GitHubError as exc:
        log.warning("delivery.body_not_updated pull=%s error=%s", existing.get("number"), exc)
    log.info("delivery.pull_request_reused number=%s", existing.get("number"))
    return str(existing["html_url"])


def pull_request_body(item: WorkItem, summary: DeliverySummary, target: GitHubRepo) -> str:
    """Markdown for the pull request: summary, closing keyword, numbers, files, spec."""
    lines: list[str] = []
    if summary.summary.strip():
        lines += [summary.summary.strip(), ""]
    closes = closing_reference(item, target)
    if closes:
        lines += [f"Closes {closes}", ""]
    lines += [
        "| | |",
        "|---|---|",
        f"| Tasks | {summary.tasks_done}/{summary.tasks_total} |",
        f"| Iterations | {summary.iterations} |",
        f"| Tokens | {summary.tokens:,} |",
        f"| Cost | ${summary.cost_usd:.2f} |",
        f"| Files changed | {len(summary.files_changed)} |",
        "",
    ]
    if summary.files_changed:
        shown = summary.files_changed[:MAX_LISTED_FILES]
        more = len(summary.files_changed) - len(shown)
        lines += ["<details><summary>Files changed</summary>", ""]
        lines += [f"- `{name}`" for name in shown]
        lines += ([f"- … and {more} more"] if more > 0 else []) + ["", "</details>", ""]
    footer = f"_Opened by AI Factory for work item `{item.id}`._"
    spec = summary.checked_spec or item.spec
    budget = MAX_BODY_CHARS - sum(len(line) + 1 for line in lines) - len(footer) - 200
    lines += [*_spec_block(spec, budget), "", footer]
    return "\n".join(lines)


def closing_reference(item: WorkItem, target: GitHubRepo) -> str | None:
    """`#N` (or `owner/repo#N` for an issue elsewhere) when the item came from a GitHub issue."""
    if item.source != Source.GITHUB or not item.source_id.isdigit():
        return None
    found = _ISSUE_URL.search(urlsplit(item.source_url).path) if item.source_url else None
    if found and (found["owner"].lower(), found["repo"].lower()) != (
            target.owner.lower(), target.name.lower()):
        return f"{found['owner']}/{found['repo']}#{item.source_id}"
    return f"#{item.source_id}"


def _spec_block(spec: str, budget: int) -> list[str]:
    # Fenced, so closing keywords or HTML in the spec (issue text) have no effect.
    if len(spec) > budget > 0:
        spec = spec[:budget] + "\n… (truncated)"
    longest = max((len(run) for run in re.findall(r"`+", spec)), default=0)
    fence = "`" * max(3, longest + 1)
    return ["<details><summary>Checked spec (SPEC.md)</summary>", "", f"{fence}markdown",
            spec.rstrip("\n"), fence, "", "</details>"]

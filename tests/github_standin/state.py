"""The stand-in's in-memory world: users, repositories, issues, pulls, and the logs.

What happens to a pull after it opens (pushes, mergeability, merging, reviews) is in
`pull_state`, checks and Actions in `check_state`; both are mixins of `StandinState`.
Both the REST routes and the tests' control API change the world through the
methods here, so an issue labelled by a test and one labelled through the API
carry the same events. One re-entrant lock guards everything; callers that need
a consistent read across several calls hold `state.lock` themselves.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from .check_state import CheckState
from .errors import ApiError
from .git_repos import Comparison
from .ids import ID_STARTS, node_id, utcnow
from .models import (
    App,
    Comment,
    ContentEdit,
    Issue,
    IssueEvent,
    Label,
    Permission,
    PullRequest,
    Repo,
    RequestRecord,
    User,
    WriteKind,
    WriteRecord,
)
from .pull_state import PullState

__all__ = ["DEFAULT_LABEL_COLOR", "DOCS_PULLS", "StandinState", "node_id", "utcnow"]

DEFAULT_LABEL_COLOR = "ededed"
DOCS_PULLS = "https://docs.github.com/rest/pulls/pulls"


class StandinState(PullState, CheckState):
    def __init__(self, *, git_root: Path, lazy_mergeable: bool = True) -> None:
        self.lock = threading.RLock()
        self.git_root = git_root
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, str] = {}  # token -> login
        self.requests: list[RequestRecord] = []
        self.writes: list[WriteRecord] = []
        self.lazy_mergeable = lazy_mergeable
        self.blob_key = secrets.token_bytes(32)  # signs log download URLs
        self._apps: dict[str, App] = {}  # by slug
        self._ids = {kind: itertools.count(start) for kind, start in ID_STARTS.items()}

    def next_id(self, kind: str) -> int:
        with self.lock:
            return next(self._ids[kind])

    # -- users and repositories ---------------------------------------------------------

    def user(self, login: str, *, type: str | None = None) -> User:
        """The user called `login`, created on first mention (`name[bot]` is a Bot)."""
        with self.lock:
            found = self.users.get(login.lower())
            if found is None:
                kind = type or ("Bot" if login.endswith("[bot]") else "User")
                uid = self.next_id("user")
                found = User(login=login, id=uid, node_id=node_id(kind, uid), type=kind,
                             created_at=utcnow())
                self.users[login.lower()] = found
            return found

    def add_repo(
        self, owner: str, name: str, *, default_branch: str, private: bool,
        description: str | None,
    ) -> Repo:
        with self.lock:
            key = f"{owner}/{name}".lower()
            if key in self.repos:
                raise ValueError(f"repository {owner}/{name} exists")
            rid = self.next_id("repo")
            now = utcnow()
            repo = Repo(
                id=rid, node_id=node_id("repo", rid),
                owner=self.user(owner, type="Organization"), name=name,
                path=self.git_root / owner / f"{name}.git", default_branch=default_branch,
                created_at=now, pushed_at=now, private=private, description=description,
            )
            self.repos[key] = repo
            return repo

    def repo(self, full_name: str) -> Repo:
        with self.lock:
            found = self.repos.get(full_name.lower())
            if found is None:
                raise ApiError.not_found()
            return found

    def role(self, repo: Repo, login: str) -> Permission:
        """The user's role; anyone may read a public repository."""
        if login.lower() == repo.owner.login.lower():
            return Permission.ADMIN
        role = repo.roles.get(login.lower(), Permission.NONE)
        return Permission.READ if role is Permission.NONE and not repo.private else role

    # -- issues -------------------------------------------------------------------------

    def issue(self, repo: Repo, number: int) -> Issue:
        found = repo.issues.get(number)
        if found is None:
            raise ApiError.not_found()
        return found

    def create_issue(
        self, repo: Repo, *, title: str, body: str | None, author: str,
        labels: Iterable[str] = (), labeled_by: str | None = None,
    ) -> Issue:
        with self.lock:
            iid = self.next_id("issue")
            now = utcnow()
            issue = Issue(
                id=iid, node_id=node_id("issue", iid), number=self._next_number(repo),
                title=title, body=body, user=self.user(author), created_at=now, updated_at=now,
            )
            repo.issues[issue.number] = issue
            self.add_labels(repo, issue, labels, actor=labeled_by or author)
            return issue

    def _next_number(self, repo: Repo) -> int:
        return max(repo.issues, default=0) + 1

    def label(self, repo: Repo, name: str, *, color: str | None = None,
              description: str | None = None) -> Label:
        """The repository's label `name` (any case), created when missing, as GitHub does."""
        with self.lock:
            found = repo.labels.get(name.lower())
            if found is None:
                lid = self.next_id("label")
                found = Label(id=lid, node_id=node_id("label", lid), name=name,
                              color=color or DEFAULT_LABEL_COLOR, description=description)
                repo.labels[name.lower()] = found
            elif color or description:
                found.color = color or found.color
                found.description = description or found.description
            return found

    def add_labels(self, repo: Repo, issue: Issue, names: Iterable[str], *,
                   actor: str) -> list[Label]:
        """Add labels the issue lacks, with a `labeled` event each; return those added."""
        with self.lock:
            added = []
            for name in names:
                if name.lower() in (n.lower() for n in issue.label_names):
                    continue
                label = self.label(repo, name)
                issue.labels.append(label)
                self._event(issue, "labeled", actor, label=label)
                added.append(label)
            return added

    def remove_label(self, repo: Repo, issue: Issue, name: str, *, actor: str) -> bool:
        with self.lock:
            for label in issue.labels:
                if label.name.lower() == name.lower():
                    issue.labels.remove(label)
                    self._event(issue, "unlabeled", actor, label=label)
                    return True
            return False

    def set_state(self, issue: Issue, state: str, *, actor: str,
                  state_reason: str | None = None, commit_id: str | None = None) -> None:
        with self.lock:
            if state == issue.state:
                return
            issue.state = state
            if state == "closed":
                issue.state_reason = state_reason or "completed"
                issue.closed_at = utcnow()
                issue.closed_by = self.user(actor)
                self._event(issue, "closed", actor, state_reason=issue.state_reason,
                            commit_id=commit_id)
            else:
                issue.state_reason = "reopened"
                issue.closed_at = None
                issue.closed_by = None
                self._event(issue, "reopened", actor)

    def edit_issue(self, issue: Issue, *, actor: str, title: str | None = None,
                   body: str | None = None) -> dict[str, dict[str, str]]:
        """Change the title and/or body as `actor`; return GitHub's webhook `changes`.

        A new title is a `renamed` event. A new body moves `last_edited_at` and `editor`
        and adds a version to `edits` (the first edit also records the original).
        Unchanged values change nothing, as on GitHub.
        """
        with self.lock:
            changes: dict[str, dict[str, str]] = {}
            now = utcnow()
            if title is not None and title != issue.title:
                changes["title"] = {"from": issue.title}
                self._event(issue, "renamed", actor, rename=(issue.title, title))
                issue.title = title
            if body is not None and body != (issue.body or ""):
                changes["body"] = {"from": issue.body or ""}
                if not issue.edits:
                    self._content_edit(issue, issue.created_at, issue.user, issue.body or "")
                editor = self.user(actor)
                self._content_edit(issue, now, editor, body)
                issue.body = body
                issue.last_edited_at = now
                issue.editor = editor
                issue.updated_at = now
            return changes

    def _content_edit(self, issue: Issue, at: datetime, editor: User, body: str) -> None:
        eid = self.next_id("edit")
        issue.edits.append(ContentEdit(id=eid, node_id=node_id("edit", eid), edited_at=at,
                                       editor=editor, body=body))

    def add_comment(self, issue: Issue, body: str, *, actor: str) -> Comment:
        with self.lock:
            cid = self.next_id("comment")
            now = utcnow()
            comment = Comment(id=cid, node_id=node_id("comment", cid), issue_number=issue.number,
                              body=body, user=self.user(actor), created_at=now, updated_at=now)
            issue.comments.append(comment)
            issue.updated_at = now
            return comment

    def _event(self, issue: Issue, event: str, actor: str, *, label: Label | None = None,
               state_reason: str | None = None, rename: tuple[str, str] | None = None,
               commit_id: str | None = None) -> None:
        eid = self.next_id("event")
        now = utcnow()
        issue.events.append(IssueEvent(
            id=eid, node_id=node_id(event, eid), event=event, actor=self.user(actor),
            created_at=now, label=label, state_reason=state_reason, rename=rename,
            commit_id=commit_id,
        ))
        issue.updated_at = now

    # -- pull requests ------------------------------------------------------------------

    def create_pull(
        self, repo: Repo, *, title: str, body: str | None, author: str, head_owner: str,
        head_ref: str, base_ref: str, draft: bool, maintainer_can_modify: bool,
        head_sha: str, base_sha: str, comparison: Comparison,
    ) -> Issue:
        """Open a pull request, refusing a second open one for the same head and base."""
        with self.lock:
            for other in repo.issues.values():
                pull = other.pull
                if (pull and other.state == "open" and pull.head_ref == head_ref
                        and pull.base_ref == base_ref and pull.head_owner == head_owner):
                    raise ApiError.validation({
                        "resource": "PullRequest", "code": "custom",
                        "message": f"A pull request already exists for {head_owner}:{head_ref}.",
                    }, documentation_url=f"{DOCS_PULLS}#create-a-pull-request")
            issue = self.create_issue(repo, title=title, body=body, author=author)
            pid = self.next_id("pull")
            issue.pull = PullRequest(
                id=pid, node_id=node_id("pull", pid), head_owner=head_owner, head_ref=head_ref,
                base_ref=base_ref, draft=draft, maintainer_can_modify=maintainer_can_modify,
                head_sha=head_sha, base_sha=base_sha, commits=comparison.commits,
                additions=comparison.additions, deletions=comparison.deletions,
                changed_files=comparison.changed_files,
            )
            return issue

    # -- logs ---------------------------------------------------------------------------

    def record_write(self, kind: WriteKind, repo: Repo, number: int, actor: str, *,
                     label: str | None = None, body: str | None = None,
                     title: str | None = None, state: str | None = None) -> None:
        with self.lock:
            self.writes.append(WriteRecord(
                kind=kind, repo=repo.full_name, number=number, actor=actor,
                at=time.monotonic(), timestamp=datetime.now(UTC), label=label, body=body,
                title=title, state=state,
            ))

    def record_request(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)


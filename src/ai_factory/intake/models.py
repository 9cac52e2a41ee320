"""What intake knows about GitHub: repositories, issues, their text and its edits, label
events, comments.

Small typed views of GitHub's JSON, built by `github.GitHubIntakeClient` from githubkit's
parsed models (or from the raw JSON where githubkit cannot parse it), so nothing
past the client depends on githubkit's types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ai_factory.core.models import WireModel


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RepoInfo(_Frozen):
    full_name: str  # owner/name, as GitHub spells it
    clone_url: str  # what the worker clones and pushes to
    html_url: str
    default_branch: str


class Issue(_Frozen):
    repo: str  # owner/name
    number: int
    title: str
    body: str
    html_url: str
    state: str  # open | closed
    labels: tuple[str, ...] = ()
    author: str = ""

    def has_label(self, name: str) -> bool:
        wanted = name.lower()
        return any(label.lower() == wanted for label in self.labels)


class LabelEvent(_Frozen):
    """A `labeled` event from the issue's events: who added which label, when."""

    id: int
    label: str
    actor: str
    actor_is_bot: bool
    created_at: datetime


class ContentEdit(_Frozen):
    """A change to an issue's text after it was written: a new body or a new title."""

    part: Literal["body", "title"]
    at: datetime
    editor: str | None  # None: GitHub cannot say who (a deleted account, an unlisted edit)
    editor_is_bot: bool = False


class IssueText(_Frozen):
    """An issue's title and body, and every edit GitHub records to them, read at once."""

    title: str
    body: str
    edits: tuple[ContentEdit, ...] = ()


class Comment(_Frozen):
    id: int
    author: str
    body: str
    author_is_bot: bool = False


class Permission(_Frozen):
    """A user's permission on a repository (`permission`: admin/write/read/none)."""

    login: str
    permission: str
    role_name: str = ""


class PullInfo(_Frozen):
    """A pull request as follow-ups need it."""

    number: int
    html_url: str
    state: str  # open | closed
    merged: bool
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    mergeable: bool | None = None  # None: GitHub has not computed it yet
    mergeable_state: str | None = None  # dirty: conflicts with the base
    author: str = ""


class Review(_Frozen):
    id: int
    author: str
    author_is_bot: bool
    state: str  # CHANGES_REQUESTED | COMMENTED | APPROVED | DISMISSED | PENDING
    body: str
    commit_id: str = ""


class ReviewComment(_Frozen):
    """A comment on a line of the diff; `in_reply_to` names its thread's first comment."""

    id: int
    author: str
    author_is_bot: bool
    body: str
    path: str = ""
    line: int | None = None
    in_reply_to: int | None = None
    review_id: int | None = None


class CheckRun(_Frozen):
    id: int
    name: str
    status: str
    conclusion: str | None
    head_sha: str
    title: str = ""
    summary: str = ""
    text: str = ""


class IntakeRequest(WireModel):
    """An issue a webhook asked intake to look at now (instead of at the next poll)."""

    id: int
    repo: str  # owner/name
    issue_number: int
    reason: str
    created_at: datetime

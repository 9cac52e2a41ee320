"""Typed records the GitHub stand-in keeps.

Users, repositories, labels, issues (a pull request is an issue with a `pull`),
comments, timeline events, the versions of an issue's body, and the two logs tests assert on: every request
(`RequestRecord`) and every write made through the REST API (`WriteRecord`).
The JSON GitHub would send is built from these by `payloads`; nothing here
knows about HTTP.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


class Permission(enum.StrEnum):
    """Repository roles as GitHub names them (`role_name`)."""

    ADMIN = "admin"
    MAINTAIN = "maintain"
    WRITE = "write"
    TRIAGE = "triage"
    READ = "read"
    NONE = "none"

    @property
    def legacy(self) -> str:
        """The coarse `permission` GitHub reports next to `role_name`."""
        return {
            Permission.ADMIN: "admin",
            Permission.MAINTAIN: "write",
            Permission.WRITE: "write",
            Permission.TRIAGE: "read",
            Permission.READ: "read",
            Permission.NONE: "none",
        }[self]


class WriteKind(enum.StrEnum):
    LABEL_ADDED = "label_added"
    LABEL_REMOVED = "label_removed"
    COMMENT = "comment"
    PULL_REQUEST = "pull_request"
    ISSUE_UPDATED = "issue_updated"


@dataclass
class User:
    login: str
    id: int
    node_id: str
    type: str  # "User", "Bot" or "Organization"
    created_at: datetime
    name: str | None = None
    email: str | None = None


@dataclass
class Label:
    id: int
    node_id: str
    name: str
    color: str
    description: str | None = None
    default: bool = False


@dataclass
class Comment:
    id: int
    node_id: str
    issue_number: int
    body: str
    user: User
    created_at: datetime
    updated_at: datetime


@dataclass
class IssueEvent:
    id: int
    node_id: str
    event: str  # labeled, unlabeled, closed, reopened, renamed
    actor: User
    created_at: datetime
    label: Label | None = None
    state_reason: str | None = None
    rename: tuple[str, str] | None = None  # renamed: (from, to)


@dataclass
class ContentEdit:
    """One version of an issue's body, as GraphQL's `userContentEdits` lists it.

    GitHub keeps none until the first edit, which records two: the original (by the
    author, at creation) and the edit itself.
    """

    id: int
    node_id: str
    edited_at: datetime
    editor: User | None  # None: a deleted account (GitHub's "ghost")
    body: str


@dataclass
class PullRequest:
    id: int
    node_id: str
    head_owner: str
    head_ref: str
    base_ref: str
    draft: bool = False
    maintainer_can_modify: bool = True
    head_sha: str = ""
    base_sha: str = ""
    commits: int = 0
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    merged_at: datetime | None = None


@dataclass
class Issue:
    id: int
    node_id: str
    number: int
    title: str
    body: str | None
    user: User
    created_at: datetime
    updated_at: datetime
    labels: list[Label] = field(default_factory=list)
    state: str = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    closed_by: User | None = None
    comments: list[Comment] = field(default_factory=list)
    events: list[IssueEvent] = field(default_factory=list)
    pull: PullRequest | None = None
    last_edited_at: datetime | None = None  # the body's last edit
    editor: User | None = None  # who made it
    edits: list[ContentEdit] = field(default_factory=list)  # oldest first

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def is_pull(self) -> bool:
        return self.pull is not None


@dataclass
class Repo:
    id: int
    node_id: str
    owner: User
    name: str
    path: Path
    default_branch: str
    created_at: datetime
    pushed_at: datetime
    private: bool = True
    description: str | None = None
    labels: dict[str, Label] = field(default_factory=dict)  # keyed by lower-cased name
    issues: dict[int, Issue] = field(default_factory=dict)
    roles: dict[str, Permission] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


@dataclass(frozen=True)
class WriteRecord:
    """One write made through the REST API, in the order the server applied it."""

    kind: WriteKind
    repo: str
    number: int
    actor: str
    at: float  # time.monotonic(), for intervals
    timestamp: datetime
    label: str | None = None
    body: str | None = None
    title: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the server answered (REST and git alike)."""

    method: str
    path: str
    route: str  # e.g. "GET /repos/{owner}/{repo}/issues" or "git POST /git-receive-pack"
    status: int
    actor: str | None
    at: float

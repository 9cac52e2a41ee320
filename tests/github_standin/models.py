"""Typed records the GitHub stand-in keeps.

Users, repositories, labels, issues (a pull request is an issue with a `pull`),
comments, timeline events, the versions of an issue's body, a pull's reviews, review
comments and their threads, checks (suites, runs) and Actions (workflow runs, jobs), and
the two logs tests assert on: every request (`RequestRecord`) and every write made
through the REST API (`WriteRecord`).
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
    REVIEW_COMMENT = "review_comment"


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
    event: str  # labeled, unlabeled, closed, reopened, renamed, merged
    actor: User
    created_at: datetime
    label: Label | None = None
    state_reason: str | None = None
    rename: tuple[str, str] | None = None  # renamed: (from, to)
    commit_id: str | None = None  # merged: the merge commit


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
class Review:
    """A submitted pull request review (state as REST spells it: APPROVED, ...)."""

    id: int
    node_id: str
    pull_number: int
    user: User
    body: str
    state: str  # COMMENTED, CHANGES_REQUESTED, APPROVED, DISMISSED
    commit_id: str
    submitted_at: datetime


@dataclass
class ReviewComment:
    """A comment on a line (or, `line` None at creation, a whole file) of a pull's diff.

    `line`/`position`/`commit_id` follow the pull's head while the file is unchanged;
    once a push changes the file the comment is outdated: `line` and `position` become
    None and `commit_id` stays where it was, as on GitHub. `original_*` never move.
    """

    id: int
    node_id: str
    pull_number: int
    review_id: int
    thread_id: int
    user: User
    body: str
    path: str
    line: int | None
    original_line: int | None
    position: int | None
    original_position: int | None
    commit_id: str
    original_commit_id: str
    diff_hunk: str
    subject_type: str  # "line" or "file"
    created_at: datetime
    updated_at: datetime
    in_reply_to_id: int | None = None
    outdated: bool = False


@dataclass
class ReviewThread:
    """The comments on one spot of the diff: a top-level review comment and its replies."""

    id: int
    node_id: str
    pull_number: int
    comment_ids: list[int] = field(default_factory=list)  # oldest first; [0] is the root
    is_resolved: bool = False
    resolved_by: User | None = None


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
    merged_by: User | None = None
    merge_commit_sha: str | None = None
    previous_head_sha: str | None = None  # before the last push to the head branch
    # Mergeability as GitHub computes it, lazily: `conflicts` holds for `checked`
    # (head, base); `requested` is the pair a read has asked to compute.
    checked: tuple[str, str] | None = None
    conflicts: bool = False
    requested: tuple[str, str] | None = None
    reviews: list[Review] = field(default_factory=list)
    review_comments: list[ReviewComment] = field(default_factory=list)
    threads: list[ReviewThread] = field(default_factory=list)


@dataclass(frozen=True)
class App:
    """A GitHub App that owns check suites (GitHub Actions or a third-party CI)."""

    id: int
    slug: str
    node_id: str
    name: str
    owner: User
    description: str
    external_url: str
    created_at: datetime


@dataclass
class CheckSuite:
    id: int
    node_id: str
    app: App
    head_sha: str
    head_branch: str | None
    before: str | None
    after: str
    created_at: datetime
    updated_at: datetime
    run_ids: list[int] = field(default_factory=list)
    workflow_run_id: int | None = None


@dataclass
class CheckRun:
    id: int
    node_id: str
    suite_id: int
    name: str
    head_sha: str
    status: str  # queued, in_progress, completed
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    title: str | None
    summary: str | None
    text: str | None
    external_id: str
    details_url: str | None = None  # None: GitHub's html_url for the run
    job_id: int | None = None  # an Actions job (same number as the check run)


@dataclass
class Workflow:
    id: int
    node_id: str
    name: str
    path: str
    created_at: datetime


@dataclass
class WorkflowRun:
    id: int
    node_id: str
    workflow_id: int
    name: str
    run_number: int
    event: str
    head_sha: str
    head_branch: str | None
    suite_id: int
    actor: User
    display_title: str
    created_at: datetime
    updated_at: datetime
    job_ids: list[int] = field(default_factory=list)


@dataclass
class Job:
    """An Actions job: its id is its check run's id, as on GitHub."""

    id: int
    node_id: str
    run_id: int
    name: str
    log: str  # as the test gave it; served with GitHub's per-line timestamps


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
    check_suites: dict[int, CheckSuite] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    workflows: dict[str, Workflow] = field(default_factory=dict)  # by name
    workflow_runs: dict[int, WorkflowRun] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)

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

"""GitHub's GraphQL API, the slice the factory reads: an issue's text and who changed it,
and a pull request's review threads (resolved or not, outdated or not, their comments).

`POST /api/graphql` (GitHub Enterprise's address, which githubkit derives from the REST
base URL) runs queries with graphql-core against a subset of GitHub's own schema: same
type, field and enum names, so a query that works here is one GitHub accepts. What it
knows: repositories, issues (title, body, `lastEditedAt`, `editor`, `userContentEdits`,
and `timelineItems` of the events the stand-in records), and actors (`User`, `Bot`,
`Organization`; a Bot's GraphQL login lacks REST's `[bot]`), and pull requests (state,
refs, `mergeable`, `reviews`, `reviewThreads` with `isResolved`, `isOutdated`, `path`,
`line`, `resolvedBy` and their `comments`: `databaseId` is the REST comment id).

GitHub's habits kept: connections need `first` or `last` (at most 100), lists run newest
first for `userContentEdits` and oldest first for `timelineItems`, a missing repository
or issue is a null with an error of `type` NOT_FOUND, and errors come with HTTP 200.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync

from .models import (
    ContentEdit,
    Issue,
    IssueEvent,
    Permission,
    Repo,
    Review,
    ReviewComment,
    ReviewThread,
    User,
)
from .payloads import Json, Urls, ts
from .state import StandinState

MAX_PAGE = 100

SCHEMA = build_schema('''
scalar DateTime

interface Node { id: ID! }
interface Actor { login: String! }

type User implements Node & Actor { id: ID! login: String! }
type Bot implements Node & Actor { id: ID! login: String! }
type Organization implements Node & Actor { id: ID! login: String! }

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type UserContentEdit implements Node {
  id: ID!
  createdAt: DateTime!
  updatedAt: DateTime!
  editedAt: DateTime!
  editor: Actor
  diff: String
  deletedAt: DateTime
  deletedBy: Actor
}

type UserContentEditConnection {
  totalCount: Int!
  nodes: [UserContentEdit]
  pageInfo: PageInfo!
}

type Label implements Node { id: ID! name: String! color: String! }

type LabeledEvent implements Node { id: ID! actor: Actor createdAt: DateTime! label: Label! }
type UnlabeledEvent implements Node { id: ID! actor: Actor createdAt: DateTime! label: Label! }
type ClosedEvent implements Node { id: ID! actor: Actor createdAt: DateTime! }
type ReopenedEvent implements Node { id: ID! actor: Actor createdAt: DateTime! }
type RenamedTitleEvent implements Node {
  id: ID!
  actor: Actor
  createdAt: DateTime!
  previousTitle: String!
  currentTitle: String!
}

union IssueTimelineItems =
  LabeledEvent | UnlabeledEvent | ClosedEvent | ReopenedEvent | RenamedTitleEvent

enum IssueTimelineItemsItemType {
  LABELED_EVENT
  UNLABELED_EVENT
  CLOSED_EVENT
  REOPENED_EVENT
  RENAMED_TITLE_EVENT
}

type IssueTimelineItemsConnection {
  totalCount: Int!
  filteredCount: Int!
  nodes: [IssueTimelineItems]
  pageInfo: PageInfo!
}

enum IssueState { OPEN CLOSED }

type Issue implements Node {
  id: ID!
  number: Int!
  title: String!
  body: String!
  state: IssueState!
  createdAt: DateTime!
  updatedAt: DateTime!
  lastEditedAt: DateTime
  author: Actor
  editor: Actor
  includesCreatedEdit: Boolean!
  userContentEdits(first: Int, last: Int, after: String, before: String):
    UserContentEditConnection
  timelineItems(
    itemTypes: [IssueTimelineItemsItemType!], since: DateTime,
    first: Int, last: Int, after: String, before: String
  ): IssueTimelineItemsConnection!
}

enum PullRequestState { OPEN CLOSED MERGED }
enum MergeableState { MERGEABLE CONFLICTING UNKNOWN }
enum PullRequestReviewState { PENDING COMMENTED APPROVED CHANGES_REQUESTED DISMISSED }
enum DiffSide { LEFT RIGHT }
enum PullRequestReviewThreadSubjectType { LINE FILE }

type PullRequestReview implements Node {
  id: ID!
  databaseId: Int
  state: PullRequestReviewState!
  body: String!
  author: Actor
  submittedAt: DateTime
  url: String!
}

type PullRequestReviewConnection {
  totalCount: Int!
  nodes: [PullRequestReview]
  pageInfo: PageInfo!
}

type PullRequestReviewComment implements Node {
  id: ID!
  databaseId: Int
  body: String!
  author: Actor
  createdAt: DateTime!
  updatedAt: DateTime!
  path: String!
  line: Int
  originalLine: Int
  outdated: Boolean!
  diffHunk: String!
  url: String!
  replyTo: PullRequestReviewComment
  pullRequestReview: PullRequestReview
}

type PullRequestReviewCommentConnection {
  totalCount: Int!
  nodes: [PullRequestReviewComment]
  pageInfo: PageInfo!
}

type PullRequestReviewThread implements Node {
  id: ID!
  isResolved: Boolean!
  isOutdated: Boolean!
  isCollapsed: Boolean!
  path: String!
  line: Int
  originalLine: Int
  startLine: Int
  diffSide: DiffSide!
  subjectType: PullRequestReviewThreadSubjectType!
  resolvedBy: User
  comments(first: Int, last: Int, after: String, before: String, skip: Int):
    PullRequestReviewCommentConnection!
}

type PullRequestReviewThreadConnection {
  totalCount: Int!
  nodes: [PullRequestReviewThread]
  pageInfo: PageInfo!
}

type PullRequest implements Node {
  id: ID!
  number: Int!
  title: String!
  body: String!
  url: String!
  state: PullRequestState!
  isDraft: Boolean!
  merged: Boolean!
  mergeable: MergeableState!
  author: Actor
  createdAt: DateTime!
  updatedAt: DateTime!
  headRefName: String!
  headRefOid: String!
  baseRefName: String!
  baseRefOid: String!
  reviews(first: Int, last: Int, after: String, before: String,
          states: [PullRequestReviewState!]): PullRequestReviewConnection
  reviewThreads(first: Int, last: Int, after: String, before: String):
    PullRequestReviewThreadConnection!
}

type Repository implements Node {
  id: ID!
  name: String!
  nameWithOwner: String!
  issue(number: Int!): Issue
  pullRequest(number: Int!): PullRequest
}

type Query {
  repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
}
''')

_EVENT_TYPES = {
    "labeled": ("LabeledEvent", "LABELED_EVENT"),
    "unlabeled": ("UnlabeledEvent", "UNLABELED_EVENT"),
    "closed": ("ClosedEvent", "CLOSED_EVENT"),
    "reopened": ("ReopenedEvent", "REOPENED_EVENT"),
    "renamed": ("RenamedTitleEvent", "RENAMED_TITLE_EVENT"),
}


def execute(state: StandinState, login: str, request: Any, urls: Urls | None = None) -> Json:
    """Answer one GraphQL request body (`{"query": ..., "variables": ...}`) as `login`."""
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        return {"errors": [{"message": "A query attribute must be specified and must be a"
                                       " string."}]}
    result = graphql_sync(
        SCHEMA,
        request["query"],
        root_value=_Root(state, login, urls or Urls(web="http://127.0.0.1")),
        variable_values=request.get("variables") or None,
        operation_name=request.get("operationName"),
    )
    body: Json = {}
    if result.errors:
        body["errors"] = [_error(error) for error in result.errors]
    if result.data is not None or not result.errors:
        body["data"] = result.data
    return body


def _error(error: GraphQLError) -> Json:
    """GitHub puts an error's `type` (NOT_FOUND, ...) beside its message, not in extensions."""
    formatted = dict(error.formatted)
    extensions = formatted.pop("extensions", None) or {}
    if "type" in extensions:
        formatted = {"type": extensions["type"], **formatted}
    return formatted


class _Root:
    def __init__(self, state: StandinState, login: str, urls: Urls) -> None:
        self._state = state
        self._login = login
        self._urls = urls

    def repository(self, _info: Any, owner: str, name: str, followRenames: bool = True) -> Json:
        repo = self._state.repos.get(f"{owner}/{name}".lower())
        if repo is None or self._state.role(repo, self._login) is Permission.NONE:
            raise _not_found(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return _repository(self._state, self._urls, repo)


def _not_found(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"type": "NOT_FOUND"})


def _repository(state: StandinState, urls: Urls, repo: Repo) -> Json:
    def issue(_info: Any, number: int) -> Json:
        found = repo.issues.get(number)
        if found is None or found.is_pull:
            raise _not_found(f"Could not resolve to an Issue with the number of {number}.")
        return _issue(found)

    def pull_request(_info: Any, number: int) -> Json:
        found = repo.issues.get(number)
        if found is None or found.pull is None:
            raise _not_found(f"Could not resolve to a PullRequest with the number of {number}.")
        state.refresh_pulls(repo)
        return _pull_request(state, urls, repo, found)

    return {"id": repo.node_id, "name": repo.name, "nameWithOwner": repo.full_name,
            "issue": issue, "pullRequest": pull_request}


_MERGEABLE = {True: "MERGEABLE", False: "CONFLICTING", None: "UNKNOWN"}


def _pull_request(state: StandinState, urls: Urls, repo: Repo, issue: Issue) -> Json:
    pull = issue.pull
    assert pull is not None
    web = urls.issue_web(repo, issue)
    comments = {c.id: c for c in pull.review_comments}
    reviews = {r.id: r for r in pull.reviews}

    def review(item: Review) -> Json:
        return {"id": item.node_id, "databaseId": item.id, "state": item.state,
                "body": item.body, "author": _actor(item.user),
                "submittedAt": ts(item.submitted_at),
                "url": f"{web}#pullrequestreview-{item.id}"}

    def comment(item: ReviewComment) -> Json:
        parent = comments.get(item.in_reply_to_id) if item.in_reply_to_id else None
        return {
            "id": item.node_id, "databaseId": item.id, "body": item.body,
            "author": _actor(item.user), "createdAt": ts(item.created_at),
            "updatedAt": ts(item.updated_at), "path": item.path, "line": item.line,
            "originalLine": item.original_line, "outdated": _outdated(item),
            "diffHunk": item.diff_hunk, "url": f"{web}#discussion_r{item.id}",
            "replyTo": comment(parent) if parent else None,
            "pullRequestReview": review(reviews[item.review_id]),
        }

    def thread(item: ReviewThread) -> Json:
        members = [comments[cid] for cid in item.comment_ids]
        root = members[0]

        def thread_comments(_info: Any, skip: int | None = None, **page: Any) -> Json:
            return _connection(members[skip or 0:], page, "comments", comment)

        return {
            "id": item.node_id, "isResolved": item.is_resolved,
            "isOutdated": _outdated(root), "isCollapsed": item.is_resolved,
            "path": root.path, "line": root.line, "originalLine": root.original_line,
            "startLine": None, "diffSide": "RIGHT", "subjectType": root.subject_type.upper(),
            "resolvedBy": _actor(item.resolved_by), "comments": thread_comments,
        }

    def review_threads(_info: Any, **page: Any) -> Json:
        return _connection(pull.threads, page, "reviewThreads", thread)

    def pull_reviews(_info: Any, states: Sequence[str] | None = None, **page: Any) -> Json:
        found = [r for r in pull.reviews if states is None or r.state in states]
        return _connection(found, page, "reviews", review)

    merged = pull.merged_at is not None
    mergeable, _ = state.mergeability(repo, issue)
    return {
        "id": pull.node_id, "number": issue.number, "title": issue.title,
        "body": issue.body or "", "url": web,
        "state": "MERGED" if merged else issue.state.upper(), "isDraft": pull.draft,
        "merged": merged, "mergeable": _MERGEABLE[mergeable], "author": _actor(issue.user),
        "createdAt": ts(issue.created_at), "updatedAt": ts(issue.updated_at),
        "headRefName": pull.head_ref, "headRefOid": pull.head_sha,
        "baseRefName": pull.base_ref, "baseRefOid": pull.base_sha,
        "reviews": pull_reviews, "reviewThreads": review_threads,
    }


def _outdated(comment: ReviewComment) -> bool:
    return comment.outdated


def _actor(who: User | None) -> Json | None:
    if who is None:
        return None
    login = who.login.removesuffix("[bot]") if who.type == "Bot" else who.login
    return {"__typename": who.type, "id": who.node_id, "login": login}


def _issue(issue: Issue) -> Json:
    def user_content_edits(_info: Any, **page: Any) -> Json:
        return _connection(list(reversed(issue.edits)), page, "userContentEdits", _edit)

    def timeline_items(_info: Any, itemTypes: Sequence[str] | None = None,
                       since: Any = None, **page: Any) -> Json:
        wanted = set(itemTypes) if itemTypes is not None else None
        events = [e for e in issue.events
                  if e.event in _EVENT_TYPES
                  and (wanted is None or _EVENT_TYPES[e.event][1] in wanted)
                  and (since is None or ts(e.created_at) >= str(since))]
        found = _connection(events, page, "timelineItems", _timeline_item)
        return {**found, "filteredCount": len(events)}

    return {
        "id": issue.node_id,
        "number": issue.number,
        "title": issue.title,
        "body": issue.body or "",
        "state": issue.state.upper(),
        "createdAt": ts(issue.created_at),
        "updatedAt": ts(issue.updated_at),
        "lastEditedAt": ts(issue.last_edited_at),
        "author": _actor(issue.user),
        "editor": _actor(issue.editor),
        "includesCreatedEdit": bool(issue.edits),
        "userContentEdits": user_content_edits,
        "timelineItems": timeline_items,
    }


def _edit(edit: ContentEdit) -> Json:
    at = ts(edit.edited_at)
    return {"id": edit.node_id, "createdAt": at, "updatedAt": at, "editedAt": at,
            "editor": _actor(edit.editor), "diff": edit.body, "deletedAt": None,
            "deletedBy": None}


def _timeline_item(event: IssueEvent) -> Json:
    body: Json = {"__typename": _EVENT_TYPES[event.event][0], "id": event.node_id,
                  "actor": _actor(event.actor), "createdAt": ts(event.created_at)}
    if event.label is not None:
        body["label"] = {"id": event.label.node_id, "name": event.label.name,
                         "color": event.label.color}
    if event.rename is not None:
        body["previousTitle"], body["currentTitle"] = event.rename
    return body


def _connection(items: list[Any], page: dict[str, Any], name: str,
                node: Callable[[Any], Json]) -> Json:
    """One page of `items` by `first`/`last` and `after`/`before` (offset cursors)."""
    first, last = page.get("first"), page.get("last")
    if first is None and last is None:
        raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate"
                           f" the `{name}` connection.")
    for arg, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise GraphQLError(f"Requesting {value} records on the `{name}` connection exceeds"
                               f" the `{arg}` limit of {MAX_PAGE} records.")
    start = _offset(page.get("after"), -1) + 1
    end = min(_offset(page.get("before"), len(items)), len(items))
    window = list(range(start, end))
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    return {
        "totalCount": len(items),
        "nodes": [node(items[i]) for i in window],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < end - 1,
            "hasPreviousPage": bool(window) and window[0] > start,
            "startCursor": _cursor(window[0]) if window else None,
            "endCursor": _cursor(window[-1]) if window else None,
        },
    }


def _cursor(offset: int) -> str:
    return base64.b64encode(f"cursor:v2:{offset}".encode()).decode()


def _offset(cursor: str | None, default: int) -> int:
    if cursor is None:
        return default
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError) as exc:
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from exc

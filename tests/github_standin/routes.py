"""The REST endpoints the factory calls, one method each, run under the state lock.

`ROUTES` maps (method, path template) to a `Routes` method. Each method reads
a `Call` (caller's login, path parameters, query, JSON body) and returns a
`Reply`; list endpoints return `items` and `rest` pages them. A pull's follow-up
(reviews, review comments, checks, Actions) is in `pull_routes`, mixed in here.
"""

from __future__ import annotations

from typing import Any

from . import git_repos, graphql_api, issue_payloads, payloads
from .calls import Call, Reply, parse_time
from .errors import ApiError
from .faults import RateLimitWindow
from .models import Issue, Permission, Repo, WriteKind
from .payloads import Json, Urls
from .pull_routes import PULL_ROUTES, CheckRoutes, PullRoutes
from .state import DOCS_PULLS, StandinState, utcnow

__all__ = ["ROUTES", "Call", "Reply", "Routes"]

R = "/repos/{owner}/{repo}"
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/rate_limit", "rate_limit"),
    ("GET", "/user", "get_user"),
    ("GET", R, "get_repo"),
    ("GET", f"{R}/issues", "list_issues"),
    ("GET", f"{R}/issues/{{number}}", "get_issue"),
    ("PATCH", f"{R}/issues/{{number}}", "update_issue"),
    ("GET", f"{R}/issues/{{number}}/events", "list_events"),
    ("GET", f"{R}/issues/{{number}}/labels", "list_labels"),
    ("POST", f"{R}/issues/{{number}}/labels", "add_labels"),
    ("PUT", f"{R}/issues/{{number}}/labels", "set_labels"),
    ("DELETE", f"{R}/issues/{{number}}/labels/{{name}}", "remove_label"),
    ("GET", f"{R}/issues/{{number}}/comments", "list_comments"),
    ("POST", f"{R}/issues/{{number}}/comments", "create_comment"),
    ("GET", f"{R}/collaborators/{{username}}/permission", "get_permission"),
    ("GET", f"{R}/pulls", "list_pulls"),
    ("POST", f"{R}/pulls", "create_pull"),
    ("GET", f"{R}/pulls/{{number}}", "get_pull"),
    *PULL_ROUTES,
    ("POST", "/graphql", "graphql"),
]
_ROLE_RANK = [Permission.NONE, Permission.READ, Permission.TRIAGE, Permission.WRITE,
              Permission.MAINTAIN, Permission.ADMIN]


class Routes(PullRoutes, CheckRoutes):
    def __init__(self, *, state: StandinState, window: RateLimitWindow) -> None:
        self._state = state
        self._window = window

    # -- lookups ------------------------------------------------------------------------

    def _repo(self, call: Call, *, needs: Permission = Permission.READ) -> Repo:
        repo = self._state.repo(f"{call.params['owner']}/{call.params['repo']}")
        role = self._state.role(repo, call.login)
        if role is Permission.NONE:
            raise ApiError.not_found()  # GitHub hides private repositories
        self._require(repo, call.login, needs)
        return repo

    def _require(self, repo: Repo, login: str, needs: Permission) -> None:
        if _ROLE_RANK.index(self._state.role(repo, login)) < _ROLE_RANK.index(needs):
            raise ApiError(403, "Resource not accessible by personal access token",
                           "https://docs.github.com/rest")

    def _issue(self, call: Call, repo: Repo) -> Issue:
        number = call.params["number"]
        if not number.isdigit():
            raise ApiError.not_found()
        return self._state.issue(repo, int(number))

    # -- account ------------------------------------------------------------------------

    def rate_limit(self, call: Call) -> Reply:
        return Reply(body=payloads.rate_limit(self._window.snapshot().json()))

    def get_user(self, call: Call) -> Reply:
        return Reply(body=payloads.private_user(call.urls, self._state.user(call.login)))

    def get_repo(self, call: Call) -> Reply:
        repo = self._repo(call)
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        role = self._state.role(repo, call.login)
        return Reply(body=payloads.repository(call.urls, repo, role=role,
                                              open_issues=open_issues))

    def get_permission(self, call: Call) -> Reply:
        repo = self._repo(call)
        who = self._state.user(call.params["username"])
        role = self._state.role(repo, who.login)
        return Reply(body=payloads.collaborator_permission(call.urls, repo, who, role))

    # -- issues -------------------------------------------------------------------------

    def list_issues(self, call: Call) -> Reply:
        repo = self._repo(call)
        state = call.arg("state", "open")
        wanted = [n.strip().lower() for n in (call.arg("labels") or "").split(",") if n.strip()]
        since = parse_time(call.arg("since"))
        creator = call.arg("creator")
        found = [
            issue for issue in repo.issues.values()
            if (state == "all" or issue.state == state)
            and all(n in (name.lower() for name in issue.label_names) for n in wanted)
            and (since is None or issue.updated_at >= since)
            and (creator is None or issue.user.login.lower() == creator.lower())
        ]
        sort = call.arg("sort", "created")
        keys = {"created": lambda i: i.created_at, "updated": lambda i: i.updated_at,
                "comments": lambda i: len(i.comments)}
        key = keys.get(sort or "created", keys["created"])
        found.sort(key=lambda i: (key(i), i.number), reverse=call.arg("direction", "desc") != "asc")
        return Reply(items=[issue_payloads.issue(call.urls, repo, i) for i in found])

    def get_issue(self, call: Call) -> Reply:
        repo = self._repo(call)
        return Reply(body=issue_payloads.issue(call.urls, repo, self._issue(call, repo)))

    def update_issue(self, call: Call) -> Reply:
        """An issue's author may change its title and body; anything else needs triage."""
        repo = self._repo(call)
        issue = self._issue(call, repo)
        body = _object(call.body)
        own_text = issue.user.login.lower() == call.login.lower() and set(body) <= {"title", "body"}
        if not own_text:
            self._require(repo, call.login, Permission.TRIAGE)
        title = body.get("title")
        self._state.edit_issue(issue, actor=call.login,
                               title=str(title) if title is not None else None,
                               body=(body["body"] or "") if "body" in body else None)
        if "labels" in body:
            names = [_label_name(item) for item in body["labels"] or []]
            self._replace_labels(call, repo, issue, names)
        if body.get("state") in ("open", "closed"):
            self._state.set_state(issue, body["state"], actor=call.login,
                                  state_reason=body.get("state_reason"))
        elif "state" in body:
            raise ApiError.validation({"resource": "Issue", "field": "state", "code": "invalid"})
        self._state.record_write(WriteKind.ISSUE_UPDATED, repo, issue.number, call.login,
                                 title=body.get("title"), body=body.get("body"),
                                 state=body.get("state"))
        issue.updated_at = max(issue.updated_at, utcnow())
        return Reply(body=issue_payloads.issue(call.urls, repo, issue))

    def list_events(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._issue(call, repo)
        return Reply(items=[issue_payloads.event(call.urls, repo, e) for e in issue.events])

    # -- labels -------------------------------------------------------------------------

    def list_labels(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._issue(call, repo)
        return Reply(items=[payloads.label(call.urls, repo, each) for each in issue.labels])

    def add_labels(self, call: Call) -> Reply:
        repo = self._repo(call, needs=Permission.TRIAGE)
        issue = self._issue(call, repo)
        names = _labels_body(call.body)
        for added in self._state.add_labels(repo, issue, names, actor=call.login):
            self._state.record_write(WriteKind.LABEL_ADDED, repo, issue.number, call.login,
                                     label=added.name)
        return Reply(body=[payloads.label(call.urls, repo, each) for each in issue.labels])

    def set_labels(self, call: Call) -> Reply:
        repo = self._repo(call, needs=Permission.TRIAGE)
        issue = self._issue(call, repo)
        self._replace_labels(call, repo, issue, _labels_body(call.body))
        return Reply(body=[payloads.label(call.urls, repo, each) for each in issue.labels])

    def remove_label(self, call: Call) -> Reply:
        repo = self._repo(call, needs=Permission.TRIAGE)
        issue = self._issue(call, repo)
        name = call.params["name"]
        if not self._state.remove_label(repo, issue, name, actor=call.login):
            raise ApiError(404, "Label does not exist",
                           "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue")
        self._state.record_write(WriteKind.LABEL_REMOVED, repo, issue.number, call.login,
                                 label=name)
        return Reply(body=[payloads.label(call.urls, repo, each) for each in issue.labels])

    def _replace_labels(self, call: Call, repo: Repo, issue: Issue, names: list[str]) -> None:
        keep = {n.lower() for n in names}
        for current in list(issue.label_names):
            if current.lower() not in keep:
                self._state.remove_label(repo, issue, current, actor=call.login)
                self._state.record_write(WriteKind.LABEL_REMOVED, repo, issue.number,
                                         call.login, label=current)
        for added in self._state.add_labels(repo, issue, names, actor=call.login):
            self._state.record_write(WriteKind.LABEL_ADDED, repo, issue.number, call.login,
                                     label=added.name)

    # -- comments -----------------------------------------------------------------------

    def list_comments(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._issue(call, repo)
        since = parse_time(call.arg("since"))
        return Reply(items=[
            issue_payloads.comment(call.urls, repo, c, issue) for c in issue.comments
            if since is None or c.updated_at >= since
        ])

    def create_comment(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._issue(call, repo)
        text = _object(call.body).get("body")
        if not isinstance(text, str) or not text:
            raise ApiError.validation({"resource": "IssueComment", "field": "body",
                                       "code": "missing_field"})
        comment = self._state.add_comment(issue, text, actor=call.login)
        self._state.record_write(WriteKind.COMMENT, repo, issue.number, call.login, body=text)
        body = issue_payloads.comment(call.urls, repo, comment, issue)
        return Reply(201, body, {"location": body["url"]})

    # -- GraphQL ------------------------------------------------------------------------

    def graphql(self, call: Call) -> Reply:
        return Reply(body=graphql_api.execute(self._state, call.login, call.body,
                                             urls=call.urls))

    # -- pull requests ------------------------------------------------------------------

    def list_pulls(self, call: Call) -> Reply:
        repo = self._repo(call)
        self._state.refresh_pulls(repo)
        state = call.arg("state", "open")
        head = call.arg("head")
        base = call.arg("base")
        head_owner, _, head_ref = (head or "").rpartition(":")
        found = [
            issue for issue in repo.issues.values()
            if issue.pull is not None
            and (state == "all" or issue.state == state)
            and (not head or (issue.pull.head_ref == head_ref
                              and (not head_owner
                                   or issue.pull.head_owner.lower() == head_owner.lower())))
            and (not base or issue.pull.base_ref == base)
        ]
        found.sort(key=lambda i: i.number, reverse=call.arg("direction", "desc") != "asc")
        return Reply(items=[self._pull_json(call.urls, repo, i, full=False) for i in found])

    def get_pull(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._pull(call, repo)
        return Reply(body=self._pull_json(call.urls, repo, issue, full=True))

    def create_pull(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = _object(call.body)
        for name in ("title", "head", "base"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError.validation({"resource": "PullRequest", "field": name,
                                           "code": "missing_field"})
        head_owner, _, head_ref = body["head"].rpartition(":")
        head_owner = head_owner or repo.owner.login
        base_ref = body["base"]
        base_sha = git_repos.branch_sha(repo.path, base_ref)
        head_sha = git_repos.branch_sha(repo.path, head_ref)
        if head_owner.lower() != repo.owner.login.lower() or head_sha is None:
            raise _invalid("head")
        if base_sha is None:
            raise _invalid("base")
        comparison = git_repos.compare(repo.path, base_sha, head_sha)
        if comparison is None:
            raise ApiError.validation({
                "resource": "PullRequest", "code": "custom",
                "message": f"The {base_ref} branch has no history in common with {head_ref}",
            }, documentation_url=f"{DOCS_PULLS}#create-a-pull-request")
        if comparison.commits == 0:
            raise ApiError.validation({
                "resource": "PullRequest", "code": "custom",
                "message": f"No commits between {base_ref} and {head_ref}",
            }, documentation_url=f"{DOCS_PULLS}#create-a-pull-request")
        issue = self._state.create_pull(
            repo, title=body["title"], body=body.get("body"), author=call.login,
            head_owner=repo.owner.login, head_ref=head_ref, base_ref=base_ref,
            draft=bool(body.get("draft", False)),
            maintainer_can_modify=bool(body.get("maintainer_can_modify", True)),
            head_sha=head_sha, base_sha=base_sha, comparison=comparison,
        )
        self._state.record_write(WriteKind.PULL_REQUEST, repo, issue.number, call.login,
                                 title=issue.title, body=issue.body)
        payload = self._pull_json(call.urls, repo, issue, full=True)
        return Reply(201, payload, {"location": payload["url"]})

    def _pull_json(self, urls: Urls, repo: Repo, issue: Issue, *, full: bool) -> Json:
        assert issue.pull is not None
        owner = self._state.user(issue.pull.head_owner)
        mergeable, mergeable_state = (self._state.mergeability(repo, issue) if full
                                      else (None, "unknown"))
        return issue_payloads.pull(urls, repo, issue, full=full, head_owner=owner,
                                   mergeable=mergeable, mergeable_state=mergeable_state)


def _invalid(field_name: str) -> ApiError:
    return ApiError.validation(
        {"resource": "PullRequest", "field": field_name, "code": "invalid"},
        documentation_url=f"{DOCS_PULLS}#create-a-pull-request",
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Body should be a JSON object")
    return body


def _label_name(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return item["name"]
    if isinstance(item, str):
        return item
    raise ApiError.validation({"resource": "Label", "field": "name", "code": "invalid"})


def _labels_body(body: Any) -> list[str]:
    """`{"labels": [...]}`, a bare list, or `{"labels": [{"name": ...}]}`, as GitHub accepts."""
    items = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ApiError.validation({"resource": "Label", "field": "labels", "code": "invalid"})
    return [_label_name(item) for item in items]

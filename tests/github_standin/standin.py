"""`GitHubStandin`: the local GitHub tests start, arrange, fault and inspect.

It owns the listener thread and is the tests' control API. Changes a test
makes here (issues, labels by a named user, permissions, commits, reviews, check
runs, merges) go through the same state methods as the REST API, so they produce
the same events; they are not logged as writes, which are reserved for what clients
do over HTTP. Reads return copies, safe to keep while the server keeps running.
The `*_payload` methods build webhook bodies from the state as it is now; send them
signed with `webhooks.send_webhook`.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from . import git_repos, issue_payloads, payloads, pull_payloads, pulls_webhook, webhooks
from .faults import Faults, RateLimitWindow
from .git_http import GitAccessError, GitHttpBackend
from .models import (
    Comment,
    Issue,
    IssueEvent,
    Permission,
    Repo,
    RequestRecord,
    Review,
    ReviewComment,
    ReviewThread,
    WriteKind,
    WriteRecord,
)
from .payloads import Json, Urls
from .pull_routes import workflow_run_json
from .rest import API_PREFIX, RestApi
from .server import StandinHTTPServer
from .state import StandinState, utcnow

SHUTDOWN_TIMEOUT_S = 5.0
_WRITE_ROLES = (Permission.WRITE, Permission.MAINTAIN, Permission.ADMIN)


class GitHubStandin:
    """A GitHub Enterprise look-alike on 127.0.0.1: REST under /api/v3, git over smart HTTP.

    Use as a context manager or call `start()` / `stop()`. `root` holds the
    bare repositories (`root/<owner>/<name>.git`). `lazy_mergeable` answers the first
    read of a pull after its head or base moved with `mergeable: null` ("unknown"),
    as GitHub does while it computes; False answers at once.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        token_user: str = "factory-bot",
        rate_limit: int = 5000,
        rate_limit_window_s: float = 3600,
        cache_max_age_s: int = 60,
        anonymous_git_read: bool = True,
        lazy_mergeable: bool = True,
    ) -> None:
        self.root = Path(root)
        self.token = token or f"ghp_{secrets.token_urlsafe(27)[:36]}"
        self.token_user = token_user
        self.faults = Faults()
        self._host = host
        self._port = port
        self._anonymous_git_read = anonymous_git_read
        self._state = StandinState(git_root=self.root, lazy_mergeable=lazy_mergeable)
        self._state.tokens[self.token] = token_user
        self._window = RateLimitWindow(limit=rate_limit, window_s=rate_limit_window_s)
        self._cache_max_age_s = cache_max_age_s
        self._server: StandinHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> GitHubStandin:
        if self._server is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        rest = RestApi(state=self._state, faults=self.faults, window=self._window,
                       urls=self._urls, cache_max_age_s=self._cache_max_age_s)
        git = GitHttpBackend(project_root=self.root, tokens=lambda: dict(self._state.tokens),
                             access=self._git_access, pushed=self._git_pushed)
        self._server = StandinHTTPServer((self._host, self._port), rest=rest, git=git,
                                         state=self._state)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="github-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> GitHubStandin:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stand-in is not running")
        return self._server.server_address[1]

    @property
    def web_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for GITHUB_API_URL / githubkit's base_url."""
        return f"{self.web_url}{API_PREFIX}"

    def git_url(self, repo: str) -> str:
        return f"{self.web_url}/{self._repo(repo).full_name}.git"

    def issue_url(self, repo: str, number: int) -> str:
        with self._state.lock:
            found = self._repo(repo)
            return self._urls().issue_web(found, self._state.issue(found, number))

    def repo_path(self, repo: str) -> Path:
        """The bare repository on disk."""
        return self._repo(repo).path

    @property
    def crashes(self) -> int:
        """Requests that hit a bug in the stand-in itself (answered 500, logged)."""
        return self._server.crashes if self._server is not None else 0

    def add_token(self, token: str, login: str) -> None:
        """Accept another token acting as `login`, with the write role on existing repos.

        A role set earlier with `set_permission` is kept.
        """
        with self._state.lock:
            self._state.tokens[token] = login
            for repo in self._state.repos.values():
                repo.roles.setdefault(login.lower(), Permission.WRITE)

    # -- repositories -------------------------------------------------------------------

    def create_repo(self, owner: str, name: str, *, files: Mapping[str, str | bytes] | None = None,
                    default_branch: str = "main", private: bool = True,
                    description: str | None = None) -> str:
        """Create `owner/name` with one commit of `files` on `default_branch`; return its full name.

        Every token's user gets the write role on it.
        """
        repo = self._state.add_repo(owner, name, default_branch=default_branch,
                                    private=private, description=description)
        git_repos.init_bare(repo.path, default_branch)
        git_repos.commit_files(repo.path, default_branch, files or {"README.md": f"# {name}\n"},
                               "Initial commit")
        for login in set(self._state.tokens.values()):
            self.set_permission(repo.full_name, login, Permission.WRITE)
        return repo.full_name

    def commit(self, repo: str, files: Mapping[str, str | bytes], *, branch: str | None = None,
               message: str = "Update files") -> str:
        """Commit `files` on `branch` as someone else would push them; return the sha.

        `branch` defaults to the default branch; a new branch starts from the default branch.
        """
        found = self._repo(repo)
        sha = git_repos.commit_files(found.path, branch or found.default_branch, files, message,
                                     start_point=found.default_branch)
        self._git_pushed(found.full_name)
        return sha

    def branches(self, repo: str) -> dict[str, str]:
        return git_repos.branches(self._repo(repo).path)

    def read_file(self, repo: str, ref: str, path: str) -> bytes | None:
        return git_repos.read_file(self._repo(repo).path, ref, path)

    def commit_messages(self, repo: str, branch: str) -> list[str]:
        return git_repos.log_messages(self._repo(repo).path, branch)

    def set_permission(self, repo: str, login: str, role: Permission | str) -> None:
        """Give `login` a role: admin, maintain, write, triage, read or none."""
        with self._state.lock:
            found = self._repo(repo)
            self._state.user(login)
            found.roles[login.lower()] = Permission(role)

    # -- issues -------------------------------------------------------------------------

    def create_issue(self, repo: str, title: str, body: str | None = "", *,
                     labels: Iterable[str] = (), author: str = "octocat",
                     labeled_by: str | None = None) -> int:
        """Open an issue; each label gets a `labeled` event by `labeled_by` (or the author)."""
        found = self._repo(repo)
        issue = self._state.create_issue(found, title=title, body=body, author=author,
                                         labels=labels, labeled_by=labeled_by)
        return issue.number

    def create_label(self, repo: str, name: str, *, color: str = "ededed",
                     description: str | None = None) -> None:
        self._state.label(self._repo(repo), name, color=color, description=description)

    def add_label(self, repo: str, number: int, label: str, *, by: str) -> None:
        with self._state.lock:
            found = self._repo(repo)
            self._state.add_labels(found, self._state.issue(found, number), [label], actor=by)

    def remove_label(self, repo: str, number: int, label: str, *, by: str) -> bool:
        with self._state.lock:
            found = self._repo(repo)
            return self._state.remove_label(found, self._state.issue(found, number), label,
                                            actor=by)

    def close_issue(self, repo: str, number: int, *, by: str,
                    state_reason: str = "completed") -> None:
        with self._state.lock:
            found = self._repo(repo)
            self._state.set_state(self._state.issue(found, number), "closed", actor=by,
                                  state_reason=state_reason)

    def reopen_issue(self, repo: str, number: int, *, by: str) -> None:
        with self._state.lock:
            found = self._repo(repo)
            self._state.set_state(self._state.issue(found, number), "open", actor=by)

    def edit_issue(self, repo: str, number: int, *, by: str, title: str | None = None,
                   body: str | None = None) -> Json:
        """Change the issue's title and/or body as `by`; return the `changes` GitHub's
        `issues.edited` webhook carries (the old values), empty when nothing changed."""
        with self._state.lock:
            found = self._repo(repo)
            return self._state.edit_issue(self._state.issue(found, number), actor=by,
                                          title=title, body=body)

    def comment(self, repo: str, number: int, body: str, *, by: str) -> None:
        with self._state.lock:
            found = self._repo(repo)
            self._state.add_comment(self._state.issue(found, number), body, actor=by)

    # -- pull requests ------------------------------------------------------------------

    def pull(self, repo: str, number: int) -> Json:
        """Pull `number` as `GET /pulls/{number}` returns it, its mergeability settled."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            self._state.refresh_pulls(found)
            mergeable, state = self._state.mergeability(found, issue, settle=True)
            return self._pull_json(found, issue, full=True, mergeable=mergeable,
                                   mergeable_state=state)

    def review(self, repo: str, number: int, *, by: str, state: str = "COMMENTED",
               body: str = "", comments: Iterable[Mapping[str, Any]] = ()) -> int:
        """Submit a review by `by` on the pull's head; return its id.

        `state`: COMMENTED, CHANGES_REQUESTED or APPROVED. Each of `comments`
        (`{"path", "line", "body"}`; `line` None comments on the file) starts a thread
        and must sit in the pull's diff, as GitHub requires (else `ApiError` 422).
        """
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            self._state.refresh_pulls(found)
            return self._state.add_review(found, issue, actor=by, state=state, body=body,
                                          comments=list(comments)).id

    def review_comment(self, repo: str, number: int, *, by: str, body: str,
                       path: str | None = None, line: int | None = None,
                       in_reply_to: int | None = None) -> int:
        """One review comment by `by` (a review of its own, as on GitHub); return its id.

        With `in_reply_to` (any comment of a thread) it is a reply in that thread.
        """
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            self._state.refresh_pulls(found)
            return self._state.add_review_comment(found, issue, actor=by, body=body, path=path,
                                                  line=line, in_reply_to=in_reply_to).id

    def resolve_thread(self, repo: str, number: int, comment_id: int, *,
                       by: str | None = None, resolved: bool = True) -> None:
        """Mark the thread holding review comment `comment_id` resolved (GraphQL
        `isResolved`; `resolvedBy` is `by`, by default the thread's first commenter),
        or unresolved again with `resolved=False`."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            thread = self._state.thread_of(issue, comment_id)
            first = self._state.review_comment(issue, thread.comment_ids[0])
            self._state.resolve_thread(issue, comment_id, actor=by or first.user.login,
                                       resolved=resolved)

    def check_run(self, repo: str, sha: str, *, name: str, conclusion: str | None = "failure",
                  status: str = "completed", title: str = "", summary: str = "",
                  text: str = "", log: str | None = None, workflow: str = "CI",
                  details_url: str | None = None) -> Json:
        """A check run on commit `sha` (a branch name works too), in its check suite.

        With `log` it is a GitHub Actions job of workflow run `workflow` on that commit
        (made on first use), whose logs are `log`. Returns
        `{"check_run_id", "check_suite_id", "run_id", "job_id"}` (the last two None
        without `log`; a job's id is its check run's id, as on GitHub).
        """
        with self._state.lock:
            found = self._repo(repo)
            commit = git_repos.resolve_commit(found.path, sha)
            if commit is None:
                raise ValueError(f"no commit {sha!r} in {found.full_name}")
            run = self._state.add_check_run(
                found, commit, name=name, status=status, conclusion=conclusion, title=title,
                summary=summary, text=text, log=log, workflow=workflow,
                details_url=details_url)
            suite = found.check_suites[run.suite_id]
            return {"check_run_id": run.id, "check_suite_id": suite.id,
                    "run_id": suite.workflow_run_id if run.job_id else None,
                    "job_id": run.job_id}

    def close_pull(self, repo: str, number: int, *, by: str, merged: bool = False) -> None:
        """Close the pull as `by`; `merged` first merges its head into its base (a merge
        commit in the bare repository; `ApiError` 405 when they conflict)."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            if merged:
                self._state.merge_pull(found, issue, actor=by)
            else:
                self._state.set_state(issue, "closed", actor=by)

    def reviews(self, repo: str, number: int) -> list[Review]:
        pull = self.issue(repo, number).pull
        return pull.reviews if pull else []

    def review_comments(self, repo: str, number: int) -> list[ReviewComment]:
        pull = self.issue(repo, number).pull
        return pull.review_comments if pull else []

    def review_threads(self, repo: str, number: int) -> list[ReviewThread]:
        pull = self.issue(repo, number).pull
        return pull.threads if pull else []

    # -- reads --------------------------------------------------------------------------

    def issue(self, repo: str, number: int) -> Issue:
        """A copy of issue (or pull request) `number`."""
        with self._state.lock:
            found = self._repo(repo)
            return copy.deepcopy(self._state.issue(found, number))

    def issues(self, repo: str) -> list[Issue]:
        """Copies of all issues and pull requests, by number."""
        with self._state.lock:
            found = self._repo(repo)
            return [copy.deepcopy(i) for _, i in sorted(found.issues.items())]

    def labels(self, repo: str, number: int) -> list[str]:
        return self.issue(repo, number).label_names

    def comments(self, repo: str, number: int) -> list[Comment]:
        return self.issue(repo, number).comments

    def events(self, repo: str, number: int) -> list[IssueEvent]:
        return self.issue(repo, number).events

    def pulls(self, repo: str) -> list[Issue]:
        """Pull requests (issues with `.pull` set), by number."""
        return [i for i in self.issues(repo) if i.is_pull]

    @property
    def writes(self) -> list[WriteRecord]:
        """Every write made through the REST API, in order."""
        with self._state.lock:
            return list(self._state.writes)

    def writes_of(self, kind: WriteKind | str) -> list[WriteRecord]:
        return [w for w in self.writes if w.kind == WriteKind(kind)]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (REST, git and web), in order."""
        with self._state.lock:
            return list(self._state.requests)

    def request_count(self, route: str | None = None, *, status: int | None = None) -> int:
        """Requests to `route` (e.g. "GET /repos/{owner}/{repo}/issues"; None: all)."""
        return sum(
            1 for r in self.requests
            if (route is None or r.route == route) and (status is None or r.status == status)
        )

    def request_counts(self) -> dict[str, int]:
        """Route -> number of requests."""
        counts: dict[str, int] = {}
        for record in self.requests:
            counts[record.route] = counts.get(record.route, 0) + 1
        return counts

    # -- webhooks -----------------------------------------------------------------------

    def issues_webhook_payload(self, repo: str, number: int, action: str, *, sender: str,
                               label: str | None = None, changes: Json | None = None) -> Json:
        """The body GitHub would deliver for an `issues` event on the issue as it is now.

        `edited` needs `changes`, as `edit_issue` returns them.
        """
        with self._state.lock:
            found = self._repo(repo)
            issue = self._state.issue(found, number)
            urls = self._urls()
            label_json = (payloads.label(urls, found, self._state.label(found, label))
                          if label else None)
            return webhooks.issues_event(
                action=action,
                issue=issue_payloads.issue(urls, found, issue),
                repository=payloads.repository(urls, found),
                sender=payloads.user(urls, self._state.user(sender)),
                label=label_json,
                changes=changes,
                organization=(payloads.organization(urls, found.owner)
                              if found.owner.type == "Organization" else None),
            )


    def pull_request_payload(self, repo: str, number: int, action: str, *, sender: str,
                             before: str | None = None, after: str | None = None,
                             changes: Json | None = None) -> Json:
        """A `pull_request` event on pull `number` as it is now.

        `synchronize` carries `before`/`after`: by default the head before the last push
        and the head now. `closed` says `pull_request.merged` (see `close_pull`). As on
        GitHub, `mergeable` is null ("unknown") on opened/reopened/synchronize, which
        come before GitHub computes it, and on closed pulls.
        """
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            self._state.refresh_pulls(found)
            assert issue.pull is not None
            if action == "synchronize":
                before = before or issue.pull.previous_head_sha
                after = after or issue.pull.head_sha
            mergeable, state = (None, "unknown")
            if action not in ("opened", "reopened", "synchronize"):
                mergeable, state = self._state.mergeability(found, issue, peek=True)
            return pulls_webhook.pull_request_event(
                action=action,
                pull_request=self._pull_json(found, issue, full=True, mergeable=mergeable,
                                             mergeable_state=state),
                before=before, after=after, changes=changes, **self._hook_common(found, sender))

    def pull_request_review_payload(self, repo: str, number: int, action: str, *, sender: str,
                                    review_id: int | None = None) -> Json:
        """A `pull_request_review` event for review `review_id` (default: the latest)."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            assert issue.pull is not None
            reviews = [r for r in issue.pull.reviews if review_id in (None, r.id)]
            if not reviews:
                raise ValueError(f"no review {review_id} on pull {number}")
            urls = self._urls()
            return pulls_webhook.pull_request_review_event(
                action=action, review=pull_payloads.review(urls, found, reviews[-1], issue),
                pull_request=self._pull_json(found, issue, full=False),
                **self._hook_common(found, sender))

    def pull_request_review_comment_payload(self, repo: str, number: int, action: str, *,
                                            sender: str, comment_id: int | None = None) -> Json:
        """A `pull_request_review_comment` event for `comment_id` (default: the latest)."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._pull_issue(found, number)
            assert issue.pull is not None
            comments = [c for c in issue.pull.review_comments if comment_id in (None, c.id)]
            if not comments:
                raise ValueError(f"no review comment {comment_id} on pull {number}")
            return pulls_webhook.pull_request_review_comment_event(
                action=action,
                comment=pull_payloads.review_comment(self._urls(), found, comments[-1], issue),
                pull_request=self._pull_json(found, issue, full=False),
                **self._hook_common(found, sender))

    def issue_comment_payload(self, repo: str, number: int, action: str, *, sender: str,
                              comment_id: int | None = None) -> Json:
        """An `issue_comment` event on issue or pull `number` (default: its latest comment)."""
        with self._state.lock:
            found = self._repo(repo)
            issue = self._state.issue(found, number)
            comments = [c for c in issue.comments if comment_id in (None, c.id)]
            if not comments:
                raise ValueError(f"no comment {comment_id} on #{number}")
            urls = self._urls()
            return pulls_webhook.issue_comment_event(
                action=action, issue=issue_payloads.issue(urls, found, issue),
                comment=issue_payloads.comment(urls, found, comments[-1], issue),
                **self._hook_common(found, sender))

    def check_run_payload(self, repo: str, check_run_id: int, action: str, *,
                          sender: str) -> Json:
        """A `check_run` event: the run (with `pull_requests`) and its suite inline."""
        with self._state.lock:
            found = self._repo(repo)
            run = found.check_runs.get(check_run_id)
            if run is None:
                raise ValueError(f"no check run {check_run_id} in {found.full_name}")
            suite = found.check_suites[run.suite_id]
            urls = self._urls()
            pulls = self._state.pulls_for(found, run.head_sha, suite.head_branch)
            return pulls_webhook.check_run_event(
                action=action,
                check_run=pull_payloads.check_run(urls, found, run, suite, pulls,
                                                  run_id=suite.workflow_run_id),
                check_suite=self._suite_json(found, suite.id),
                **self._hook_common(found, sender))

    def check_suite_payload(self, repo: str, check_suite_id: int, action: str, *,
                            sender: str) -> Json:
        """A `check_suite` event for the suite as its runs leave it now."""
        with self._state.lock:
            found = self._repo(repo)
            return pulls_webhook.check_suite_event(
                action=action, check_suite=self._suite_json(found, check_suite_id),
                **self._hook_common(found, sender))

    def workflow_run_payload(self, repo: str, run_id: int, action: str, *, sender: str) -> Json:
        """A `workflow_run` event: the run (pull_requests, head_sha, conclusion), workflow."""
        with self._state.lock:
            found = self._repo(repo)
            run = found.workflow_runs.get(run_id)
            if run is None:
                raise ValueError(f"no workflow run {run_id} in {found.full_name}")
            urls = self._urls()
            flow = next(w for w in found.workflows.values() if w.id == run.workflow_id)
            return pulls_webhook.workflow_run_event(
                action=action, workflow_run=workflow_run_json(self._state, urls, found, run),
                workflow=pull_payloads.workflow(urls, found, flow),
                **self._hook_common(found, sender))

    def _hook_common(self, found: Repo, sender: str) -> dict[str, Any]:
        urls = self._urls()
        return {
            "repository": payloads.repository(urls, found),
            "sender": payloads.user(urls, self._state.user(sender)),
            "organization": (payloads.organization(urls, found.owner)
                             if found.owner.type == "Organization" else None),
        }

    def _suite_json(self, found: Repo, suite_id: int) -> Json:
        suite = found.check_suites.get(suite_id)
        if suite is None:
            raise ValueError(f"no check suite {suite_id} in {found.full_name}")
        runs = self._state.suite_runs(found, suite)
        status, conclusion = self._state.summary(runs)
        pulls = self._state.pulls_for(found, suite.head_sha, suite.head_branch)
        return pull_payloads.check_suite(self._urls(), found, suite, pulls, status=status,
                                         conclusion=conclusion,
                                         latest_runs=len({r.name for r in runs}))

    # -- internals ----------------------------------------------------------------------

    def _repo(self, repo: str) -> Repo:
        return self._state.repo(repo)

    def _urls(self) -> Urls:
        return Urls(web=self.web_url)

    def _pull_issue(self, found: Repo, number: int) -> Issue:
        issue = self._state.issue(found, number)
        if issue.pull is None:
            raise ValueError(f"#{number} in {found.full_name} is an issue, not a pull request")
        return issue

    def _pull_json(self, found: Repo, issue: Issue, *, full: bool, mergeable: bool | None = None,
                   mergeable_state: str = "unknown") -> Json:
        assert issue.pull is not None
        return issue_payloads.pull(self._urls(), found, issue, full=full,
                                   head_owner=self._state.user(issue.pull.head_owner),
                                   mergeable=mergeable, mergeable_state=mergeable_state)

    def _git_access(self, repo: str, login: str | None, push: bool) -> None:
        with self._state.lock:
            found = self._state.repos.get(repo.lower())
            if found is None or not found.path.is_dir():
                raise GitAccessError(404, "Repository not found.")
            if login is None:
                if not self._anonymous_git_read and found.private:
                    raise GitAccessError(401, "Authentication required")
                return
            role = self._state.role(found, login)
            if push and role not in _WRITE_ROLES:
                raise GitAccessError(403, f"Permission to {found.full_name}.git denied to {login}.")
            if role is Permission.NONE:
                raise GitAccessError(404, "Repository not found.")

    def _git_pushed(self, repo: str) -> None:
        with self._state.lock:
            found = self._state.repos.get(repo.lower())
            if found is not None:
                found.pushed_at = utcnow()
                self._state.refresh_pulls(found)  # a pushed head moves its open pulls

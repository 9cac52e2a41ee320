"""REST endpoints for a pull's follow-up: reviews, review comments, checks, Actions.

Mixins of `routes.Routes` (same `_repo` permission check: reads need the read role,
and anyone who can read a repository may comment on its pulls, as on GitHub).
A job's logs answer 302 to a signed, short-lived URL on the stand-in that serves them
as text/plain (GitHub redirects to blob storage the same way; see `blobs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import blobs, git_repos, pull_payloads
from .calls import Call, Reply, parse_time
from .check_state import attempt, latest_per_name
from .errors import ApiError
from .models import (
    CheckRun,
    CheckSuite,
    Issue,
    Permission,
    Repo,
    ReviewComment,
    WorkflowRun,
    WriteKind,
)

if TYPE_CHECKING:
    from .payloads import Urls
    from .state import StandinState

R = "/repos/{owner}/{repo}"
PULL_ROUTES: list[tuple[str, str, str]] = [
    ("GET", f"{R}/pulls/comments/{{comment_id}}", "get_review_comment"),
    ("GET", f"{R}/pulls/{{number}}/reviews", "list_reviews"),
    ("GET", f"{R}/pulls/{{number}}/reviews/{{review_id}}", "get_review"),
    ("GET", f"{R}/pulls/{{number}}/reviews/{{review_id}}/comments", "list_comments_of_review"),
    ("GET", f"{R}/pulls/{{number}}/comments", "list_review_comments"),
    ("POST", f"{R}/pulls/{{number}}/comments", "create_review_comment"),
    ("POST", f"{R}/pulls/{{number}}/comments/{{comment_id}}/replies", "create_reply"),
    ("GET", f"{R}/commits/{{ref}}/check-runs", "list_check_runs_for_ref"),
    ("GET", f"{R}/commits/{{ref}}/check-suites", "list_check_suites_for_ref"),
    ("GET", f"{R}/check-runs/{{check_run_id}}", "get_check_run"),
    ("GET", f"{R}/check-suites/{{check_suite_id}}", "get_check_suite"),
    ("GET", f"{R}/check-suites/{{check_suite_id}}/check-runs", "list_check_runs_in_suite"),
    ("GET", f"{R}/actions/runs/{{run_id}}", "get_workflow_run"),
    ("GET", f"{R}/actions/runs/{{run_id}}/jobs", "list_jobs_for_workflow_run"),
    ("GET", f"{R}/actions/jobs/{{job_id}}", "get_job"),
    ("GET", f"{R}/actions/jobs/{{job_id}}/logs", "download_job_logs"),
]
DOCS_CHECKS = "https://docs.github.com/rest/checks/runs"


class _Base:
    # Provided by routes.Routes.
    _state: StandinState

    def _repo(self, call: Call, *, needs: Permission = Permission.READ) -> Repo:
        raise NotImplementedError

    def _issue(self, call: Call, repo: Repo) -> Issue:
        raise NotImplementedError

    def _fresh_repo(self, call: Call) -> Repo:
        """The repository, its open pulls caught up with pushes (for `pull_requests`)."""
        repo = self._repo(call)
        self._state.refresh_pulls(repo)
        return repo

    def _pull(self, call: Call, repo: Repo) -> Issue:
        """The pull `number`, up to date with its branches (404 for an issue)."""
        issue = self._issue(call, repo)
        if issue.pull is None:
            raise ApiError.not_found()
        self._state.refresh_pulls(repo)
        return issue


def _id(call: Call, name: str) -> int:
    value = call.params[name]
    if not value.isdigit():
        raise ApiError.not_found()
    return int(value)


class PullRoutes(_Base):
    # -- reviews ------------------------------------------------------------------------

    def list_reviews(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._pull(call, repo)
        assert issue.pull is not None
        return Reply(items=[pull_payloads.review(call.urls, repo, r, issue)
                            for r in issue.pull.reviews])

    def get_review(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._pull(call, repo)
        assert issue.pull is not None
        wanted = _id(call, "review_id")
        for review in issue.pull.reviews:
            if review.id == wanted:
                return Reply(body=pull_payloads.review(call.urls, repo, review, issue))
        raise ApiError.not_found()

    def list_comments_of_review(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._pull(call, repo)
        assert issue.pull is not None
        wanted = _id(call, "review_id")
        if not any(review.id == wanted for review in issue.pull.reviews):
            raise ApiError.not_found()
        return Reply(items=[pull_payloads.review_comment(call.urls, repo, c, issue)
                            for c in issue.pull.review_comments if c.review_id == wanted])

    # -- review comments ----------------------------------------------------------------

    def list_review_comments(self, call: Call) -> Reply:
        repo = self._repo(call)
        issue = self._pull(call, repo)
        assert issue.pull is not None
        since = parse_time(call.arg("since"))
        found = [c for c in issue.pull.review_comments
                 if since is None or c.updated_at >= since]
        key = (lambda c: (c.updated_at, c.id)) if call.arg("sort") == "updated" else (
            lambda c: (c.created_at, c.id))
        found.sort(key=key, reverse=call.arg("direction", "asc") == "desc")
        return Reply(items=[pull_payloads.review_comment(call.urls, repo, c, issue)
                            for c in found])

    def get_review_comment(self, call: Call) -> Reply:
        repo = self._repo(call)
        wanted = _id(call, "comment_id")
        for issue in repo.issues.values():
            if issue.pull is None:
                continue
            for comment in issue.pull.review_comments:
                if comment.id == wanted:
                    return Reply(body=pull_payloads.review_comment(call.urls, repo, comment,
                                                                   issue))
        raise ApiError.not_found()

    def create_review_comment(self, call: Call) -> Reply:
        """A review comment on the head (`path` and `line`, or `subject_type` "file"),
        or a reply when `in_reply_to` names a comment of this pull."""
        repo = self._repo(call)
        issue = self._pull(call, repo)
        body = _object(call.body)
        text = body.get("body")
        reply_to = body.get("in_reply_to")
        if reply_to is not None:
            comment = self._state.add_review_comment(repo, issue, actor=call.login,
                                                     body=_text(text),
                                                     in_reply_to=_int(reply_to, "in_reply_to"))
            return self._created(call, repo, issue, comment)
        for name in ("commit_id", "path"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError.validation({"resource": "PullRequestReviewComment",
                                           "field": name, "code": "missing_field"})
        line = body.get("line")
        if body.get("subject_type") == "file":
            line = None
        elif line is None:
            raise ApiError.validation({"resource": "PullRequestReviewComment", "field": "line",
                                       "code": "missing_field"})
        comment = self._state.add_review_comment(
            repo, issue, actor=call.login, body=_text(text), path=body["path"],
            line=_int(line, "line") if line is not None else None)
        return self._created(call, repo, issue, comment)

    def create_reply(self, call: Call) -> Reply:
        """`POST .../pulls/{n}/comments/{comment_id}/replies`: a reply in that comment's thread."""
        repo = self._repo(call)
        issue = self._pull(call, repo)
        text = _object(call.body).get("body")
        comment = self._state.add_review_comment(repo, issue, actor=call.login,
                                                 body=_text(text),
                                                 in_reply_to=_id(call, "comment_id"))
        return self._created(call, repo, issue, comment)

    def _created(self, call: Call, repo: Repo, issue: Issue, comment: ReviewComment) -> Reply:
        self._state.record_write(WriteKind.REVIEW_COMMENT, repo, issue.number, call.login,
                                 body=comment.body)
        body = pull_payloads.review_comment(call.urls, repo, comment, issue)
        return Reply(201, body, {"location": body["url"]})


class CheckRoutes(_Base):
    # -- checks -------------------------------------------------------------------------

    def list_check_runs_for_ref(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        sha = self._commit(repo, call.params["ref"])
        runs = self._state.check_runs_for(
            repo, sha, name=call.arg("check_name"), latest=call.arg("filter", "latest") != "all",
            app_id=_int(call.arg("app_id"), "app_id", "CheckRun") if call.arg("app_id") else None)
        status = call.arg("status")
        runs = [run for run in runs if status is None or run.status == status]
        return Reply(items=[self._run_json(call, repo, run) for run in runs], wrap="check_runs")

    def list_check_suites_for_ref(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        sha = self._commit(repo, call.params["ref"])
        name = call.arg("check_name")
        app_id = call.arg("app_id")
        suites = [
            suite for suite in sorted(repo.check_suites.values(), key=lambda s: s.id)
            if suite.head_sha == sha and (app_id is None or str(suite.app.id) == app_id)
            and (name is None or any(r.name == name
                                     for r in self._state.suite_runs(repo, suite)))
        ]
        return Reply(items=[self._suite_json(call, repo, s) for s in suites],
                     wrap="check_suites")

    def get_check_run(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        run = repo.check_runs.get(_id(call, "check_run_id"))
        if run is None:
            raise ApiError.not_found()
        return Reply(body=self._run_json(call, repo, run))

    def get_check_suite(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        suite = repo.check_suites.get(_id(call, "check_suite_id"))
        if suite is None:
            raise ApiError.not_found()
        return Reply(body=self._suite_json(call, repo, suite))

    def list_check_runs_in_suite(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        suite = repo.check_suites.get(_id(call, "check_suite_id"))
        if suite is None:
            raise ApiError.not_found()
        runs = self._state.suite_runs(repo, suite)
        if call.arg("filter", "latest") != "all":
            runs = latest_per_name(runs)
        name = call.arg("check_name")
        runs = sorted((r for r in runs if name is None or r.name == name),
                      key=lambda r: r.id, reverse=True)
        return Reply(items=[self._run_json(call, repo, r) for r in runs], wrap="check_runs")

    def _commit(self, repo: Repo, ref: str) -> str:
        sha = git_repos.resolve_commit(repo.path, ref)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}",
                           f"{DOCS_CHECKS}#list-check-runs-for-a-git-reference")
        return sha

    def _run_json(self, call: Call, repo: Repo, run: CheckRun) -> dict[str, Any]:
        suite = repo.check_suites[run.suite_id]
        pulls = self._state.pulls_for(repo, run.head_sha, suite.head_branch)
        return pull_payloads.check_run(call.urls, repo, run, suite, pulls,
                                       run_id=suite.workflow_run_id)

    def _suite_json(self, call: Call, repo: Repo, suite: CheckSuite) -> dict[str, Any]:
        runs = self._state.suite_runs(repo, suite)
        status, conclusion = self._state.summary(runs)
        latest = len({r.name for r in runs})
        pulls = self._state.pulls_for(repo, suite.head_sha, suite.head_branch)
        return pull_payloads.check_suite(call.urls, repo, suite, pulls, status=status,
                                         conclusion=conclusion, latest_runs=latest)

    # -- Actions ------------------------------------------------------------------------

    def get_workflow_run(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        run = repo.workflow_runs.get(_id(call, "run_id"))
        if run is None:
            raise ApiError.not_found()
        return Reply(body=workflow_run_json(self._state, call.urls, repo, run))

    def list_jobs_for_workflow_run(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        run = repo.workflow_runs.get(_id(call, "run_id"))
        if run is None:
            raise ApiError.not_found()
        runs = self._state.workflow_run_jobs(repo, run)
        listed = runs if call.arg("filter", "latest") == "all" else latest_per_name(runs)
        return Reply(items=[
            pull_payloads.job(call.urls, repo, repo.jobs[job.id], job, run,
                              attempt=attempt(runs, job))
            for job in listed
        ], wrap="jobs")

    def get_job(self, call: Call) -> Reply:
        repo = self._fresh_repo(call)
        job = repo.jobs.get(_id(call, "job_id"))
        if job is None:
            raise ApiError.not_found()
        parent = repo.workflow_runs[job.run_id]
        run = repo.check_runs[job.id]
        return Reply(body=pull_payloads.job(
            call.urls, repo, job, run, parent,
            attempt=attempt(self._state.workflow_run_jobs(repo, parent), run)))

    def download_job_logs(self, call: Call) -> Reply:
        """302 to a signed URL valid for a minute, as GitHub answers (its body is empty)."""
        repo = self._fresh_repo(call)
        job = repo.jobs.get(_id(call, "job_id"))
        if job is None:
            raise ApiError.not_found()
        location = blobs.job_log_url(self._state.blob_key, call.urls.web, repo.id, job.id)
        return Reply(302, None, {"location": location})


def workflow_run_json(state: StandinState, urls: Urls, repo: Repo,
                      run: WorkflowRun) -> dict[str, Any]:
    """A workflow run as REST (and the `workflow_run` webhook) shows it now."""
    suite = repo.check_suites[run.suite_id]
    jobs = state.workflow_run_jobs(repo, run)
    status, conclusion = state.summary(jobs)
    flow = next(w for w in repo.workflows.values() if w.id == run.workflow_id)
    pulls = state.pulls_for(repo, run.head_sha, run.head_branch)
    return pull_payloads.workflow_run(urls, repo, run, flow, suite, pulls, status=status,
                                      conclusion=conclusion,
                                      attempts=max((attempt(jobs, j) for j in jobs), default=1))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Body should be a JSON object")
    return body


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError.validation({"resource": "PullRequestReviewComment", "field": "body",
                                   "code": "missing_field"})
    return value


def _int(value: Any, name: str, resource: str = "PullRequestReviewComment") -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ApiError.validation({"resource": resource, "field": name, "code": "invalid"})
    return int(value)


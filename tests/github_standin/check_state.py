"""Checks and Actions: check suites and runs on commits, workflow runs and their jobs.

A mixin of `StandinState`. Shaped as GitHub keeps them:

- a check run belongs to a check suite: one suite per app and commit, except that
  GitHub Actions makes one suite per workflow run;
- a check run made with a log is an Actions job: it joins the workflow run of its
  workflow on that commit (made on first use: event `pull_request` when an open
  pull's head is the commit, else `push`), the job's id is the check run's id, and
  the check run's `details_url`/`html_url` are the job's page;
- a suite's and a workflow run's status and conclusion follow their latest run of each
  name (the worst conclusion wins: action_required, cancelled, timed_out, failure, then
  success, neutral, skipped); a second job of the same name in a workflow run is a
  re-run (its `run_attempt` counts up, and `filter=latest` lists only the newest);
- `pull_requests` of a suite, run or workflow run lists the open pulls whose head is
  that commit or branch, worked out when asked.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from . import git_repos
from .ids import node_id, utcnow
from .models import App, CheckRun, CheckSuite, Issue, Job, Repo, User, Workflow, WorkflowRun

CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out",
               "action_required")
STATUSES = ("queued", "in_progress", "completed")
# Worst first: a suite (or workflow run) concludes as its worst run.
_RANK = ("action_required", "cancelled", "timed_out", "failure", "startup_failure", "stale",
         "success", "neutral", "skipped")
_PASSING = ("success", "neutral", "skipped")
ACTIONS_APP = "github-actions"
OTHER_APP = "standin-ci"


class CheckState:
    # Provided by StandinState.
    lock: threading.RLock
    next_id: Callable[[str], int]
    user: Callable[..., User]
    _apps: dict[str, App]

    # -- apps ---------------------------------------------------------------------------

    def app(self, slug: str) -> App:
        """GitHub Actions (the real app's id) or the stand-in's third-party CI app."""
        with self.lock:
            apps = self._apps
            if slug not in apps:
                if slug == ACTIONS_APP:
                    apps[slug] = App(
                        id=15368, slug=slug, node_id="MDM6QXBwMTUzNjg=", name="GitHub Actions",
                        owner=self.user("github", type="Organization"),
                        description="Automate your workflow from idea to production",
                        external_url="https://help.github.com/en/actions",
                        created_at=datetime(2018, 7, 30, 9, 30, 17, tzinfo=UTC))
                else:
                    aid = 900_001 + len(apps)
                    apps[slug] = App(
                        id=aid, slug=slug, node_id=node_id("app", aid), name=slug,
                        owner=self.user(slug, type="Organization"), description="",
                        external_url=f"https://{slug}.example", created_at=utcnow())
            return apps[slug]

    # -- creating -----------------------------------------------------------------------

    def add_check_run(
        self, repo: Repo, sha: str, *, name: str, status: str, conclusion: str | None,
        title: str | None, summary: str | None, text: str | None, log: str | None,
        workflow: str, details_url: str | None = None,
    ) -> CheckRun:
        """A check run on commit `sha` (with `log`: an Actions job of `workflow`)."""
        with self.lock:
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
            if status == "completed" and conclusion not in CONCLUSIONS:
                raise ValueError(f"conclusion must be one of {CONCLUSIONS}, not {conclusion!r}")
            now = utcnow()
            run_id = self.next_id("check_run")
            workflow_run = None
            if log is not None:
                workflow_run = self._workflow_run(repo, sha, workflow, now)
                suite = repo.check_suites[workflow_run.suite_id]
            else:
                suite = self._suite(repo, sha, self.app(OTHER_APP), now)
            run = CheckRun(
                id=run_id, node_id=node_id("check_run", run_id), suite_id=suite.id, name=name,
                head_sha=sha, status=status,
                conclusion=conclusion if status == "completed" else None,
                started_at=now, completed_at=now if status == "completed" else None,
                title=title or None, summary=summary or None, text=text or None,
                external_id=str(uuid.uuid4()) if workflow_run else "",
                details_url=details_url, job_id=run_id if workflow_run else None,
            )
            repo.check_runs[run_id] = run
            suite.run_ids.append(run_id)
            suite.updated_at = now
            if workflow_run is not None:
                repo.jobs[run_id] = Job(id=run_id, node_id=node_id("job", run_id),
                                        run_id=workflow_run.id, name=name, log=log or "")
                workflow_run.job_ids.append(run_id)
                workflow_run.updated_at = now
            return run

    def _suite(self, repo: Repo, sha: str, app: App, now: datetime) -> CheckSuite:
        for suite in repo.check_suites.values():
            if suite.app.slug == app.slug and suite.head_sha == sha and app.slug != ACTIONS_APP:
                return suite
        sid = self.next_id("check_suite")
        parent = git_repos.resolve_commit(repo.path, f"{sha}^")
        suite = CheckSuite(id=sid, node_id=node_id("check_suite", sid), app=app, head_sha=sha,
                           head_branch=self._branch_of(repo, sha), before=parent, after=sha,
                           created_at=now, updated_at=now)
        repo.check_suites[sid] = suite
        return suite

    def _workflow_run(self, repo: Repo, sha: str, name: str, now: datetime) -> WorkflowRun:
        workflow = repo.workflows.get(name)
        if workflow is None:
            wid = self.next_id("workflow")
            slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "ci"
            workflow = Workflow(id=wid, node_id=node_id("workflow", wid), name=name,
                                path=f".github/workflows/{slug}.yml", created_at=now)
            repo.workflows[name] = workflow
        for found in repo.workflow_runs.values():
            if found.workflow_id == workflow.id and found.head_sha == sha:
                return found
        suite = self._suite(repo, sha, self.app(ACTIONS_APP), now)
        pull = next(iter(self.pulls_for(repo, sha, None)), None)
        if pull is not None:
            event, actor, title = "pull_request", pull.user, pull.title
        else:
            event, actor = "push", repo.owner
            title = git_repos.commit_info(repo.path, sha).message.split("\n", 1)[0]
        rid = self.next_id("workflow_run")
        number = 1 + sum(1 for r in repo.workflow_runs.values() if r.workflow_id == workflow.id)
        run = WorkflowRun(id=rid, node_id=node_id("workflow_run", rid), workflow_id=workflow.id,
                          name=name, run_number=number, event=event, head_sha=sha,
                          head_branch=suite.head_branch, suite_id=suite.id, actor=actor,
                          display_title=title, created_at=now, updated_at=now)
        repo.workflow_runs[rid] = run
        suite.workflow_run_id = rid
        return run

    def _branch_of(self, repo: Repo, sha: str) -> str | None:
        pull = next(iter(self.pulls_for(repo, sha, None)), None)
        if pull is not None and pull.pull is not None:
            return pull.pull.head_ref
        at = git_repos.branches_at(repo.path, sha)
        return (repo.default_branch if repo.default_branch in at else at[0]) if at else None

    # -- reading ------------------------------------------------------------------------

    def pulls_for(self, repo: Repo, sha: str, branch: str | None) -> list[Issue]:
        """Open pulls whose head is commit `sha` or branch `branch`, by number."""
        return [
            issue for _, issue in sorted(repo.issues.items())
            if issue.pull is not None and issue.state == "open"
            and (issue.pull.head_sha == sha or (branch and issue.pull.head_ref == branch))
        ]

    def check_runs_for(self, repo: Repo, sha: str, *, name: str | None = None,
                       latest: bool = True, app_id: int | None = None) -> list[CheckRun]:
        """Check runs on `sha`, newest first; `latest` keeps the newest per app and name."""
        found = [
            run for run in sorted(repo.check_runs.values(), key=lambda r: r.id, reverse=True)
            if run.head_sha == sha and (name is None or run.name == name)
            and (app_id is None or repo.check_suites[run.suite_id].app.id == app_id)
        ]
        if not latest:
            return found
        seen: set[tuple[str, str]] = set()
        newest = []
        for run in found:
            key = (repo.check_suites[run.suite_id].app.slug, run.name)
            if key not in seen:
                seen.add(key)
                newest.append(run)
        return newest

    def head_checks_pass(self, repo: Repo, sha: str) -> bool:
        """No latest check run on `sha` failed or is still running."""
        return all(run.status == "completed" and run.conclusion in _PASSING
                   for run in self.check_runs_for(repo, sha))

    def summary(self, runs: list[CheckRun]) -> tuple[str, str | None]:
        """(status, conclusion) of a suite or workflow run made of `runs` (a re-run of a
        name replaces the earlier run of it)."""
        runs = latest_per_name(runs)
        if not runs:
            return "queued", None
        if any(run.status != "completed" for run in runs):
            started = any(run.status != "queued" for run in runs)
            return ("in_progress" if started else "queued"), None
        return "completed", min((run.conclusion or "success" for run in runs), key=_RANK.index)

    def suite_runs(self, repo: Repo, suite: CheckSuite) -> list[CheckRun]:
        return [repo.check_runs[run_id] for run_id in suite.run_ids]

    def workflow_run_jobs(self, repo: Repo, run: WorkflowRun) -> list[CheckRun]:
        return [repo.check_runs[job_id] for job_id in run.job_ids]


def latest_per_name(runs: list[CheckRun]) -> list[CheckRun]:
    """The newest run of each name, in the order the runs were made."""
    newest: dict[str, CheckRun] = {}
    for run in runs:
        if run.name not in newest or run.id > newest[run.name].id:
            newest[run.name] = run
    return sorted(newest.values(), key=lambda run: run.id)


def attempt(runs: list[CheckRun], run: CheckRun) -> int:
    """Which attempt of its name `run` is among `runs` (1 for the first)."""
    return sum(1 for other in runs if other.name == run.name and other.id <= run.id)

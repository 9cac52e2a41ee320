"""GitHub's JSON for a pull's reviews and review comments, and for checks and Actions.

Same conventions as `payloads` and `issue_payloads` (GitHub Enterprise URL shapes,
fields from docs.github.com's examples, validated by githubkit's models): reviews,
review comments, check runs and suites, workflow runs and jobs, the apps that own
suites, and the small shapes these nest (`PullRequestMinimal`, `MinimalRepository`,
`SimpleCommit`). The webhook variants are in `pulls_webhook`.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import git_repos
from .issue_payloads import author_association, reactions
from .models import (
    App,
    CheckRun,
    CheckSuite,
    Issue,
    Job,
    Repo,
    Review,
    ReviewComment,
    Workflow,
    WorkflowRun,
)
from .payloads import Json, Urls, repository, ts, user

_MINIMAL_KEYS = ("id", "node_id", "name", "full_name", "private", "owner", "html_url",
                 "description", "fork", "url")
_NOT_MINIMAL = ("clone_url", "git_url", "ssh_url", "svn_url", "mirror_url")


def minimal_repository(urls: Urls, repo: Repo) -> Json:
    """`MinimalRepository` as workflow runs and check suites carry it: ids and URLs."""
    full = repository(urls, repo)
    return {key: value for key, value in full.items()
            if key in _MINIMAL_KEYS or (key.endswith("_url") and key not in _NOT_MINIMAL)}


def pull_minimal(urls: Urls, repo: Repo, item: Issue) -> Json:
    """`PullRequestMinimal`: what check runs, suites and workflow runs list."""
    assert item.pull is not None
    short = {"id": repo.id, "url": urls.repo_api(repo), "name": repo.name}
    return {
        "url": f"{urls.repo_api(repo)}/pulls/{item.number}",
        "id": item.pull.id,
        "number": item.number,
        "head": {"ref": item.pull.head_ref, "sha": item.pull.head_sha, "repo": short},
        "base": {"ref": item.pull.base_ref, "sha": item.pull.base_sha, "repo": short},
    }


def simple_commit(repo: Repo, sha: str) -> Json:
    info = git_repos.commit_info(repo.path, sha)
    return {
        "id": sha,
        "tree_id": info.tree_id,
        "message": info.message,
        "timestamp": info.timestamp,
        "author": {"name": info.author[0], "email": info.author[1]},
        "committer": {"name": info.committer[0], "email": info.committer[1]},
    }


# -- reviews ------------------------------------------------------------------------------


def review(urls: Urls, repo: Repo, item: Review, pull: Issue) -> Json:
    api = f"{urls.repo_api(repo)}/pulls/{pull.number}"
    html = f"{urls.issue_web(repo, pull)}#pullrequestreview-{item.id}"
    return {
        "id": item.id,
        "node_id": item.node_id,
        "user": user(urls, item.user),
        "body": item.body,
        "state": item.state,
        "html_url": html,
        "pull_request_url": api,
        "author_association": author_association(repo, item.user),
        "_links": {"html": {"href": html}, "pull_request": {"href": api}},
        "submitted_at": ts(item.submitted_at),
        "commit_id": item.commit_id,
    }


def review_comment(urls: Urls, repo: Repo, item: ReviewComment, pull: Issue) -> Json:
    url = f"{urls.repo_api(repo)}/pulls/comments/{item.id}"
    html = f"{urls.issue_web(repo, pull)}#discussion_r{item.id}"
    pull_api = f"{urls.repo_api(repo)}/pulls/{pull.number}"
    body: Json = {
        "url": url,
        "pull_request_review_id": item.review_id,
        "id": item.id,
        "node_id": item.node_id,
        "diff_hunk": item.diff_hunk,
        "path": item.path,
        "position": item.position,
        "original_position": item.original_position,
        "commit_id": item.commit_id,
        "original_commit_id": item.original_commit_id,
    }
    if item.in_reply_to_id is not None:
        body["in_reply_to_id"] = item.in_reply_to_id
    body.update({
        "user": user(urls, item.user),
        "body": item.body,
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "html_url": html,
        "pull_request_url": pull_api,
        "author_association": author_association(repo, item.user),
        "_links": {"self": {"href": url}, "html": {"href": html},
                   "pull_request": {"href": pull_api}},
        "reactions": reactions(url),
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": item.line,
        "original_line": item.original_line,
        "side": "RIGHT",
        "subject_type": item.subject_type,
    })
    return body


# -- checks -------------------------------------------------------------------------------


def app(urls: Urls, item: App) -> Json:
    """`Integration`: the GitHub App that owns a check suite."""
    return {
        "id": item.id,
        "slug": item.slug,
        "node_id": item.node_id,
        "client_id": f"Iv1.{item.id:016x}",
        "owner": user(urls, item.owner),
        "name": item.name,
        "description": item.description,
        "external_url": item.external_url,
        "html_url": f"{urls.web}/apps/{item.slug}",
        "created_at": ts(item.created_at),
        "updated_at": ts(item.created_at),
        "permissions": {"actions": "write", "checks": "write", "contents": "write",
                        "metadata": "read", "pull_requests": "write", "statuses": "write"},
        "events": ["check_run", "check_suite", "pull_request", "push", "workflow_run"],
    }


def job_html(urls: Urls, repo: Repo, run_id: int, job_id: int) -> str:
    return f"{urls.repo_web(repo)}/actions/runs/{run_id}/job/{job_id}"


def check_run(urls: Urls, repo: Repo, item: CheckRun, suite: CheckSuite,
              pulls: Iterable[Issue], *, run_id: int | None) -> Json:
    """`CheckRun`; an Actions job's run links to the job's page (`run_id` its workflow run)."""
    url = f"{urls.repo_api(repo)}/check-runs/{item.id}"
    if item.job_id is not None and run_id is not None:
        html = details = job_html(urls, repo, run_id, item.job_id)
    else:
        html = f"{urls.repo_web(repo)}/runs/{item.id}"
        details = item.details_url or html
    return {
        "id": item.id,
        "name": item.name,
        "node_id": item.node_id,
        "head_sha": item.head_sha,
        "external_id": item.external_id,
        "url": url,
        "html_url": html,
        "details_url": details,
        "status": item.status,
        "conclusion": item.conclusion,
        "started_at": ts(item.started_at),
        "completed_at": ts(item.completed_at),
        "output": {
            "title": item.title,
            "summary": item.summary,
            "text": item.text,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "check_suite": {"id": suite.id},
        "app": app(urls, suite.app),
        "pull_requests": [pull_minimal(urls, repo, p) for p in pulls],
    }


def check_suite(urls: Urls, repo: Repo, item: CheckSuite, pulls: Iterable[Issue], *,
                status: str, conclusion: str | None, latest_runs: int) -> Json:
    url = f"{urls.repo_api(repo)}/check-suites/{item.id}"
    return {
        "id": item.id,
        "node_id": item.node_id,
        "head_branch": item.head_branch,
        "head_sha": item.head_sha,
        "status": status,
        "conclusion": conclusion,
        "url": url,
        "before": item.before,
        "after": item.after,
        "pull_requests": [pull_minimal(urls, repo, p) for p in pulls],
        "app": app(urls, item.app),
        "repository": minimal_repository(urls, repo),
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "head_commit": simple_commit(repo, item.head_sha),
        "latest_check_runs_count": latest_runs,
        "check_runs_url": f"{url}/check-runs",
        "rerequestable": True,
        "runs_rerequestable": True,
    }


# -- Actions ------------------------------------------------------------------------------


def workflow(urls: Urls, repo: Repo, item: Workflow) -> Json:
    """The `workflow` object a `workflow_run` webhook carries."""
    return {
        "id": item.id,
        "node_id": item.node_id,
        "name": item.name,
        "path": item.path,
        "state": "active",
        "created_at": ts(item.created_at),
        "updated_at": ts(item.created_at),
        "url": f"{urls.repo_api(repo)}/actions/workflows/{item.id}",
        "html_url": f"{urls.repo_web(repo)}/blob/{repo.default_branch}/{item.path}",
        "badge_url": f"{urls.repo_web(repo)}/workflows/{item.name}/badge.svg",
    }


def workflow_run(urls: Urls, repo: Repo, item: WorkflowRun, flow: Workflow, suite: CheckSuite,
                 pulls: Iterable[Issue], *, status: str, conclusion: str | None,
                 attempts: int = 1) -> Json:
    api = f"{urls.repo_api(repo)}/actions/runs/{item.id}"
    actor = user(urls, item.actor)
    return {
        "id": item.id,
        "name": item.name,
        "node_id": item.node_id,
        "head_branch": item.head_branch,
        "head_sha": item.head_sha,
        "path": flow.path,
        "display_title": item.display_title,
        "run_number": item.run_number,
        "event": item.event,
        "status": status,
        "conclusion": conclusion,
        "workflow_id": item.workflow_id,
        "check_suite_id": suite.id,
        "check_suite_node_id": suite.node_id,
        "url": api,
        "html_url": f"{urls.repo_web(repo)}/actions/runs/{item.id}",
        "pull_requests": [pull_minimal(urls, repo, p) for p in pulls],
        "created_at": ts(item.created_at),
        "updated_at": ts(item.updated_at),
        "actor": actor,
        "run_attempt": attempts,
        "referenced_workflows": [],
        "run_started_at": ts(item.created_at),
        "triggering_actor": actor,
        "jobs_url": f"{api}/jobs",
        "logs_url": f"{api}/logs",
        "check_suite_url": f"{urls.repo_api(repo)}/check-suites/{suite.id}",
        "artifacts_url": f"{api}/artifacts",
        "cancel_url": f"{api}/cancel",
        "rerun_url": f"{api}/rerun",
        "previous_attempt_url": f"{api}/attempts/{attempts - 1}" if attempts > 1 else None,
        "workflow_url": f"{urls.repo_api(repo)}/actions/workflows/{item.workflow_id}",
        "head_commit": simple_commit(repo, item.head_sha),
        "repository": minimal_repository(urls, repo),
        "head_repository": minimal_repository(urls, repo),
    }


def job(urls: Urls, repo: Repo, item: Job, run: CheckRun, parent: WorkflowRun, *,
        attempt: int = 1) -> Json:
    """`Job`, with GitHub's three steps around the work (set up, run, complete)."""
    started = ts(run.started_at)
    done = ts(run.completed_at)
    steps: list[Json] = []
    if run.status != "queued":
        steps = [
            {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
             "started_at": started, "completed_at": started},
            {"name": f"Run {item.name}", "status": run.status, "conclusion": run.conclusion,
             "number": 2, "started_at": started, "completed_at": done},
        ]
        if run.status == "completed":
            steps.append({"name": "Complete job", "status": "completed",
                          "conclusion": "success", "number": 3, "started_at": done,
                          "completed_at": done})
    runner = run.status != "queued"
    return {
        "id": item.id,
        "run_id": item.run_id,
        "workflow_name": parent.name,
        "head_branch": parent.head_branch,
        "run_url": f"{urls.repo_api(repo)}/actions/runs/{item.run_id}",
        "run_attempt": attempt,
        "node_id": item.node_id,
        "head_sha": run.head_sha,
        "url": f"{urls.repo_api(repo)}/actions/jobs/{item.id}",
        "html_url": job_html(urls, repo, item.run_id, item.id),
        "status": run.status,
        "conclusion": run.conclusion,
        "created_at": started,
        "started_at": started,
        "completed_at": done,
        "name": item.name,
        "steps": steps,
        "check_run_url": f"{urls.repo_api(repo)}/check-runs/{item.id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 1 if runner else None,
        "runner_name": "GitHub Actions 1" if runner else None,
        "runner_group_id": 2 if runner else None,
        "runner_group_name": "GitHub Actions" if runner else None,
    }


def job_log(item: Job, run: CheckRun) -> bytes:
    """The log as GitHub serves it: a UTF-8 BOM, then each line after an ISO timestamp."""
    stamp = run.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    lines = item.log.splitlines() or [""]
    text = "".join(f"{stamp}.{index:07d}Z {line}\n" for index, line in enumerate(lines))
    return ("\ufeff" + text).encode()

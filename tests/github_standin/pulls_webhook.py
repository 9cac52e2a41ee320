"""Webhook bodies for a pull's follow-up, assembled from REST-shaped pieces.

One builder per event, as GitHub delivers them (send them with `webhooks.send_webhook`,
which signs the exact bytes): `pull_request` (opened, synchronize with `before`/`after`,
closed with `pull_request.merged`, reopened), `pull_request_review` (submitted),
`pull_request_review_comment` (created), `issue_comment` (created, on an issue or a
pull: a pull's issue carries `pull_request`), `check_run`, `check_suite` and
`workflow_run` (completed, and the other actions GitHub sends for them).

`GitHubStandin.pull_request_payload` and friends fill these from the state. Where a
webhook spells a field differently from REST, the difference is made here: a review's
`state` is lower case ("changes_requested") and its empty body is null; a review or
review comment event carries the pull in its short shape (no `merged`/`mergeable`);
a check run's `check_suite` is the suite itself, not just its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]

PULL_REQUEST_ACTIONS = ("opened", "synchronize", "closed", "reopened", "edited",
                        "ready_for_review", "converted_to_draft")
REVIEW_ACTIONS = ("submitted", "edited", "dismissed")
REVIEW_COMMENT_ACTIONS = ("created", "edited", "deleted")
ISSUE_COMMENT_ACTIONS = ("created", "edited", "deleted")
CHECK_RUN_ACTIONS = ("created", "completed", "rerequested", "requested_action")
CHECK_SUITE_ACTIONS = ("completed", "requested", "rerequested")
WORKFLOW_RUN_ACTIONS = ("requested", "in_progress", "completed")


def _envelope(action: str, allowed: tuple[str, ...], event: str, body: Json, *,
              repository: Mapping[str, Any], sender: Mapping[str, Any],
              organization: Mapping[str, Any] | None,
              installation_id: int | None) -> Json:
    if action not in allowed:
        raise ValueError(f"unsupported {event} action {action!r}")
    payload: Json = {"action": action, **body, "repository": dict(repository)}
    if organization is not None:
        payload["organization"] = dict(organization)
    payload["sender"] = dict(sender)
    if installation_id is not None:
        payload["installation"] = {
            "id": installation_id,
            "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}",
        }
    return payload


def webhook_pull(pull_request: Mapping[str, Any]) -> Json:
    """A REST pull as webhooks nest it: `head.repo`/`base.repo` without `organization`."""
    pull = dict(pull_request)
    for side in ("head", "base"):
        branch = dict(pull[side])
        if isinstance(branch.get("repo"), Mapping):
            branch["repo"] = {k: v for k, v in branch["repo"].items() if k != "organization"}
        pull[side] = branch
    return pull


def pull_request_event(*, action: str, pull_request: Mapping[str, Any],
                       repository: Mapping[str, Any], sender: Mapping[str, Any],
                       before: str | None = None, after: str | None = None,
                       changes: Mapping[str, Any] | None = None,
                       organization: Mapping[str, Any] | None = None,
                       installation_id: int | None = None) -> Json:
    """`pull_request`: number, pull_request (full shape), and `before`/`after` on synchronize."""
    body: Json = {"number": pull_request["number"]}
    if action == "synchronize":
        if not before or not after:
            raise ValueError("synchronize needs before and after")
        body.update(before=before, after=after)
    if action == "edited":
        body["changes"] = dict(changes or {})
    body["pull_request"] = webhook_pull(pull_request)
    return _envelope(action, PULL_REQUEST_ACTIONS, "pull_request", body,
                     repository=repository, sender=sender, organization=organization,
                     installation_id=installation_id)


def webhook_review(review: Mapping[str, Any]) -> Json:
    """A REST review as webhooks spell it: lower-case state, a null empty body."""
    return {**review, "state": str(review["state"]).lower(), "body": review["body"] or None}


def pull_request_review_event(*, action: str, review: Mapping[str, Any],
                              pull_request: Mapping[str, Any], repository: Mapping[str, Any],
                              sender: Mapping[str, Any],
                              organization: Mapping[str, Any] | None = None,
                              installation_id: int | None = None) -> Json:
    """`pull_request_review`: review (webhook spelling), pull_request (short shape)."""
    body = {"review": webhook_review(review), "pull_request": webhook_pull(pull_request)}
    return _envelope(action, REVIEW_ACTIONS, "pull_request_review", body,
                     repository=repository, sender=sender, organization=organization,
                     installation_id=installation_id)


def pull_request_review_comment_event(*, action: str, comment: Mapping[str, Any],
                                      pull_request: Mapping[str, Any],
                                      repository: Mapping[str, Any],
                                      sender: Mapping[str, Any],
                                      organization: Mapping[str, Any] | None = None,
                                      installation_id: int | None = None) -> Json:
    """`pull_request_review_comment`: comment (REST shape, `in_reply_to_id` on replies)."""
    body = {"comment": dict(comment), "pull_request": webhook_pull(pull_request)}
    return _envelope(action, REVIEW_COMMENT_ACTIONS, "pull_request_review_comment", body,
                     repository=repository, sender=sender, organization=organization,
                     installation_id=installation_id)


def issue_comment_event(*, action: str, issue: Mapping[str, Any], comment: Mapping[str, Any],
                        repository: Mapping[str, Any], sender: Mapping[str, Any],
                        organization: Mapping[str, Any] | None = None,
                        installation_id: int | None = None) -> Json:
    """`issue_comment`: issue (a pull's has `pull_request`), comment."""
    body = {"issue": dict(issue), "comment": dict(comment)}
    return _envelope(action, ISSUE_COMMENT_ACTIONS, "issue_comment", body,
                     repository=repository, sender=sender, organization=organization,
                     installation_id=installation_id)


def check_run_event(*, action: str, check_run: Mapping[str, Any],
                    check_suite: Mapping[str, Any], repository: Mapping[str, Any],
                    sender: Mapping[str, Any], organization: Mapping[str, Any] | None = None,
                    installation_id: int | None = None) -> Json:
    """`check_run`: the run with its suite inline (no repository or head commit in it)."""
    suite = {k: v for k, v in check_suite.items()
             if k not in ("repository", "head_commit", "latest_check_runs_count",
                          "check_runs_url", "rerequestable", "runs_rerequestable")}
    body = {"check_run": {**check_run, "check_suite": suite}}
    return _envelope(action, CHECK_RUN_ACTIONS, "check_run", body, repository=repository,
                     sender=sender, organization=organization, installation_id=installation_id)


def check_suite_event(*, action: str, check_suite: Mapping[str, Any],
                      repository: Mapping[str, Any], sender: Mapping[str, Any],
                      organization: Mapping[str, Any] | None = None,
                      installation_id: int | None = None) -> Json:
    """`check_suite`: the suite (without its minimal `repository`, which is top level)."""
    suite = {k: v for k, v in check_suite.items() if k != "repository"}
    return _envelope(action, CHECK_SUITE_ACTIONS, "check_suite", {"check_suite": suite},
                     repository=repository, sender=sender, organization=organization,
                     installation_id=installation_id)


def workflow_run_event(*, action: str, workflow_run: Mapping[str, Any],
                       workflow: Mapping[str, Any], repository: Mapping[str, Any],
                       sender: Mapping[str, Any], organization: Mapping[str, Any] | None = None,
                       installation_id: int | None = None) -> Json:
    """`workflow_run`: workflow_run (REST shape: pull_requests, head_sha, conclusion), workflow."""
    body = {"workflow": dict(workflow), "workflow_run": dict(workflow_run)}
    return _envelope(action, WORKFLOW_RUN_ACTIONS, "workflow_run", body, repository=repository,
                     sender=sender, organization=organization, installation_id=installation_id)

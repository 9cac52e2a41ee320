"""GitHub webhook deliveries: is this one genuine, and what does it ask of intake?

Owns the signature check (`X-Hub-Signature-256`: "sha256=" + HMAC-SHA256 of the
raw body with GITHUB_WEBHOOK_SECRET, compared in constant time) and the mapping
of an `issues` event to one `WebhookAction`:

- `labeled` with INTAKE_LABEL: look at the issue now (the intake loop does the
  trust check and the rest; the sender named in the payload is not trusted here);
- `edited` (title or body) on an issue carrying INTAKE_LABEL or `-processing`:
  look at it now too; intake reads who edited what from GitHub (`trust`);
- `closed`, or `unlabeled` leaving the issue with neither INTAKE_LABEL nor
  `<label>-processing`: cancel its work item if still queued. (When intake itself
  swaps `ai-factory` for `ai-factory-processing`, the processing label is there,
  so intake never cancels its own work.)
- on a pull request (a review, a review comment, a comment, a check run, check suite or
  workflow run that completed, a push to it, its closing): look at that pull request
  now (`followups.FollowUpPlanner` decides whether it is the factory's and what is owed);
- anything else, and repositories outside REPOS: nothing.

Pure functions; the route in `api` does the I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ai_factory.intake.labels import IntakeLabels


class ActionKind(StrEnum):
    INTAKE = "intake"
    CANCEL = "cancel"
    PULL = "pull"  # look at these pull requests for follow-ups
    IGNORE = "ignore"


PULL_EVENTS = {
    "pull_request_review": ("submitted", "edited", "dismissed"),
    "pull_request_review_comment": ("created", "edited"),
    "pull_request": ("synchronize", "closed", "reopened"),
    "check_run": ("completed",),
    "check_suite": ("completed",),
    "workflow_run": ("completed",),
}


@dataclass(frozen=True)
class WebhookAction:
    kind: ActionKind
    reason: str
    repo: str | None = None  # owner/name
    clone_url: str | None = None
    issue_number: int | None = None
    pulls: tuple[int, ...] = ()  # PULL: the pull requests to look at


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def decide(
    event: str, payload: dict[str, Any], *, labels: IntakeLabels, repos: list[str]
) -> WebhookAction:
    if event == "ping":
        return WebhookAction(ActionKind.IGNORE, "ping")
    action = str(payload.get("action") or "")
    repository = payload.get("repository") if isinstance(payload.get("repository"), dict) else {}
    if event in PULL_EVENTS or event == "issue_comment":
        return _pull_action(event, action, payload, repository, repos)
    if event != "issues":
        return WebhookAction(ActionKind.IGNORE, f"event {event or '?'} is not handled")
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    full_name = str(repository.get("full_name") or "")
    number = issue.get("number")
    if not full_name or not isinstance(number, int):
        return WebhookAction(ActionKind.IGNORE, "payload names no repository or issue")
    if repos and full_name.lower() not in {r.lower() for r in repos}:
        return WebhookAction(ActionKind.IGNORE, f"repository {full_name} is not in REPOS")
    if "pull_request" in issue:
        return WebhookAction(ActionKind.IGNORE, "pull requests are not intake's")
    target = {"repo": full_name, "clone_url": repository.get("clone_url"), "issue_number": number}
    label = payload.get("label") if isinstance(payload.get("label"), dict) else {}
    label_name = str(label.get("name") or "")
    current = [
        str(each.get("name") if isinstance(each, dict) else each)
        for each in issue.get("labels") or []
    ]
    match action:
        case "labeled" if labels.is_intake(label_name):
            return WebhookAction(ActionKind.INTAKE, "labeled", **target)
        case "edited" if _text_changed(payload):
            if any(labels.is_intake(name) or labels.is_processing(name) for name in current):
                return WebhookAction(ActionKind.INTAKE, "edited", **target)
            return WebhookAction(ActionKind.IGNORE, "issue carries no intake label")
        case "closed":
            return WebhookAction(ActionKind.CANCEL, "issue closed", **target)
        case "unlabeled" if labels.is_intake(label_name) or labels.is_processing(label_name):
            if any(labels.is_intake(name) or labels.is_processing(name) for name in current):
                return WebhookAction(ActionKind.IGNORE, "issue still carries an intake label")
            return WebhookAction(ActionKind.CANCEL, f"label {label_name} removed", **target)
    return WebhookAction(ActionKind.IGNORE, f"issues.{action} is not handled")


def _text_changed(payload: dict[str, Any]) -> bool:
    changes = payload.get("changes")
    return isinstance(changes, dict) and ("body" in changes or "title" in changes)


def _pull_action(
    event: str, action: str, payload: dict[str, Any], repository: dict[str, Any], repos: list[str]
) -> WebhookAction:
    full_name = str(repository.get("full_name") or "")
    if not full_name:
        return WebhookAction(ActionKind.IGNORE, "payload names no repository")
    if repos and full_name.lower() not in {r.lower() for r in repos}:
        return WebhookAction(ActionKind.IGNORE, f"repository {full_name} is not in REPOS")
    if event == "issue_comment":
        issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
        if "pull_request" not in issue or action != "created":
            return WebhookAction(ActionKind.IGNORE, "issue_comment is not a new comment on a pull request")
        numbers = [issue.get("number")]
    elif action not in PULL_EVENTS[event]:
        return WebhookAction(ActionKind.IGNORE, f"{event}.{action} is not handled")
    elif event in ("check_run", "check_suite", "workflow_run"):
        holder = payload.get(event) if isinstance(payload.get(event), dict) else {}
        numbers = [p.get("number") for p in holder.get("pull_requests") or [] if isinstance(p, dict)]
    else:
        pull = payload.get("pull_request") if isinstance(payload.get("pull_request"), dict) else {}
        numbers = [pull.get("number")]
    pulls = tuple(sorted({n for n in numbers if isinstance(n, int) and n > 0}))
    if not pulls:
        return WebhookAction(ActionKind.IGNORE, f"{event}.{action} names no pull request")
    return WebhookAction(ActionKind.PULL, f"{event}.{action}", repo=full_name,
                         clone_url=repository.get("clone_url"), pulls=pulls)  # fmt: skip

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
    IGNORE = "ignore"


@dataclass(frozen=True)
class WebhookAction:
    kind: ActionKind
    reason: str
    repo: str | None = None  # owner/name
    clone_url: str | None = None
    issue_number: int | None = None


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
    if event != "issues":
        return WebhookAction(ActionKind.IGNORE, f"event {event or '?'} is not handled")
    action = str(payload.get("action") or "")
    repository = payload.get("repository") if isinstance(payload.get("repository"), dict) else {}
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

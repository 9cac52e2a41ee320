"""Webhook deliveries as GitHub sends them: signed POSTs and `issues` event bodies.

`send_webhook` POSTs the exact bytes it signs, with GitHub's headers
(`X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256` = "sha256=" +
HMAC-SHA256 of the raw body, `User-Agent: GitHub-Hookshot/...`).
`issues_event` assembles an `issues` payload from REST-shaped pieces, which
`GitHubStandin.issues_webhook_payload` fills from its state (an `edited` one carries
`changes`: the old title and/or body, `{"body": {"from": "..."}}`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

HOOKSHOT_AGENT = "GitHub-Hookshot/7c1f2e4"
WEBHOOK_TIMEOUT_S = 10.0
ISSUES_ACTIONS = ("opened", "edited", "labeled", "unlabeled", "closed", "reopened")


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: str
    request_headers: dict[str, str]
    body: bytes
    status: int
    response_body: bytes


def signature_256(secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_1(secret: str | bytes, body: bytes) -> str:
    """The legacy `X-Hub-Signature` (SHA-1), still sent next to the SHA-256 one."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()


def encode_payload(payload: Mapping[str, Any] | bytes | str) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_headers(event: str, body: bytes, secret: str | bytes | None, delivery_id: str,
                    *, hook_id: int = 448_123_456) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": HOOKSHOT_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": "700000001",
    }
    if secret is not None:
        headers["X-Hub-Signature"] = signature_1(secret, body)
        headers["X-Hub-Signature-256"] = signature_256(secret, body)
    return headers


def send_webhook(url: str, event: str, payload: Mapping[str, Any] | bytes | str,
                 secret: str | bytes | None, delivery_id: str | None = None, *,
                 timeout_s: float = WEBHOOK_TIMEOUT_S) -> WebhookDelivery:
    """POST one delivery to `url`; `secret` None sends it unsigned."""
    body = encode_payload(payload)
    delivery_id = delivery_id or str(uuid.uuid4())
    headers = webhook_headers(event, body, secret, delivery_id)
    with httpx.Client(timeout=timeout_s) as client:
        response = client.post(url, content=body, headers=headers)
    return WebhookDelivery(delivery_id=delivery_id, request_headers=headers, body=body,
                           status=response.status_code, response_body=response.content)


def issues_event(*, action: str, issue: Mapping[str, Any], repository: Mapping[str, Any],
                 sender: Mapping[str, Any], label: Mapping[str, Any] | None = None,
                 changes: Mapping[str, Any] | None = None,
                 organization: Mapping[str, Any] | None = None,
                 installation_id: int | None = None) -> dict[str, Any]:
    """An `issues` event body: action, (changes), issue, (label), repository, sender."""
    if action not in ISSUES_ACTIONS:
        raise ValueError(f"unsupported issues action {action!r}")
    if action in ("labeled", "unlabeled") and label is None:
        raise ValueError(f"{action} needs a label")
    if action == "edited" and changes is None:
        raise ValueError("edited needs changes")
    body: dict[str, Any] = {"action": action}
    if action == "edited":
        body["changes"] = dict(changes or {})
    body["issue"] = dict(issue)
    if label is not None:
        body["label"] = dict(label)
    body["repository"] = dict(repository)
    if organization is not None:
        body["organization"] = dict(organization)
    body["sender"] = dict(sender)
    if installation_id is not None:
        body["installation"] = {"id": installation_id,
                                "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}"}
    return body

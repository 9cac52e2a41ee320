"""Intake's HTTP routes on the orchestrator app.

- `POST /webhooks/github`: GitHub's deliveries. Checked (signature, then the
  delivery id, persisted, so a replay is a 200 no-op), mapped to an action
  (`webhook.decide`) and answered at once with 202: an `issues.labeled` only
  enqueues a request for the intake loop (spec generation can take minutes);
  a close or unlabel cancels a still-queued item, one UPDATE.
- `POST /api/intake/requests/take`, `POST /api/intake/cancel`: what
  `factory intake` in its own process uses instead of the database (admin token).

`install(app)` adds them when intake is configured (GITHUB_TOKEN and REPOS).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from ai_factory.core.errors import AuthError, InvalidInputError
from ai_factory.core.models import Source, WireModel, WorkItem
from ai_factory.core.settings import Settings
from ai_factory.intake.labels import IntakeLabels
from ai_factory.intake.models import IntakeRequest
from ai_factory.intake.store import IntakeStore
from ai_factory.intake.webhook import ActionKind, decide, verify_signature
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep
from ai_factory.orchestrator.api.responses import ADMIN, CHANGE, errors

log = logging.getLogger(__name__)

webhooks = APIRouter(tags=["intake"])
admin = APIRouter(
    prefix="/api/intake", tags=["intake"], dependencies=[AdminDep], responses={**ADMIN, **CHANGE}
)
REPLAYED = {"description": "A delivery seen before: nothing is done again."}


def intake_configured(settings: Settings) -> bool:
    return settings.github_token is not None and bool(settings.repos)


def install(app: FastAPI, settings: Settings) -> None:
    """Include intake's routes in the orchestrator app when intake is configured."""
    if intake_configured(settings):
        app.include_router(webhooks)
        app.include_router(admin)


@webhooks.post(
    "/webhooks/github",
    status_code=202,
    responses={200: REPLAYED, **CHANGE, **errors(401, 422, 503)},
)
async def receive(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    body = await request.body()
    secret = (
        settings.github_webhook_secret.get_secret_value() if settings.github_webhook_secret else ""
    )
    if not secret:
        raise AuthError("webhooks are off: GITHUB_WEBHOOK_SECRET is not set")
    if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
        log.warning("webhook.bad_signature delivery=%s", request.headers.get("x-github-delivery"))
        raise AuthError("missing or invalid X-Hub-Signature-256")
    event = request.headers.get("x-github-event", "")
    delivery_id = request.headers.get("x-github-delivery", "").strip()
    if not delivery_id or len(delivery_id) > 200:
        raise InvalidInputError("X-GitHub-Delivery: missing or invalid")
    payload = _json_object(body)
    action = decide(
        event, payload, labels=IntakeLabels(settings.intake_label), repos=settings.repos
    )
    store = IntakeStore(db=services.db)
    first = await store.record_delivery(
        delivery_id=delivery_id,
        event=event,
        action=str(payload.get("action") or "") or None,
        repo=action.repo,
    )
    if not first:
        log.info("webhook.replayed delivery=%s", delivery_id)
        return JSONResponse({"status": "duplicate", "delivery": delivery_id}, status_code=200)
    log.info(
        "webhook.received delivery=%s event=%s action=%s outcome=%s",
        delivery_id,
        event,
        payload.get("action"),
        action.kind,
    )
    result: dict[str, Any] = {
        "status": str(action.kind),
        "reason": action.reason,
        "delivery": delivery_id,
    }
    if action.kind is ActionKind.INTAKE:
        assert action.repo is not None and action.issue_number is not None
        await store.enqueue(
            repo=action.repo,
            issue_number=action.issue_number,
            reason=action.reason,
            delivery_id=delivery_id,
        )
    elif action.kind is ActionKind.PULL:
        assert action.repo is not None
        for number in action.pulls:
            await store.enqueue(repo=action.repo, issue_number=number, reason=action.reason,
                                delivery_id=delivery_id)  # fmt: skip
    elif action.kind is ActionKind.CANCEL and action.clone_url and action.issue_number is not None:
        cancelled = await services.queue.cancel_queued(
            source=Source.GITHUB,
            repo=action.clone_url,
            source_id=str(action.issue_number),
            reason=f"GitHub: {action.reason}",
        )
        result["cancelled"] = str(cancelled.id) if cancelled else None
    return JSONResponse(result, status_code=202)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidInputError("request body is not valid JSON") from None
    except RecursionError:  # a valid signature does not make a body sane
        raise InvalidInputError("request body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise InvalidInputError("request body must be a JSON object")
    return payload


class CancelRequest(WireModel):
    repo: str  # the clone URL the item was submitted with
    issue_number: int | None = None
    source_id: str | None = None  # instead of issue_number: e.g. a pull request's follow-ups
    reason: str = "cancelled by intake"


class MergedRequest(WireModel):
    item_id: str  # the item whose pull request was merged


class CancelResult(WireModel):
    item: WorkItem | None = None


@admin.post("/requests/take", response_model=list[IntakeRequest])
async def take_requests(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[IntakeRequest]:
    return await IntakeStore(db=services.db).take(limit=limit)


@admin.post("/cancel", response_model=CancelResult)
async def cancel_queued(body: CancelRequest, services: ServicesDep) -> CancelResult:
    source_id = body.source_id or (str(body.issue_number) if body.issue_number else None)
    if not source_id:
        raise InvalidInputError("issueNumber or sourceId: one is needed")
    item = await services.queue.cancel_queued(
        source=Source.GITHUB, repo=body.repo, source_id=source_id, reason=body.reason
    )
    return CancelResult(item=item)


@admin.post("/merged", response_model=CancelResult, responses=errors(404, 422))
async def record_merged(body: MergedRequest, services: ServicesDep) -> CancelResult:
    """Intake saw the item's pull request closed merged (for the cost per merged PR)."""
    return CancelResult(item=await services.queue.record_merge(body.item_id))

"""`POST /webhooks/github` on a real orchestrator: signatures, replays, pickup, cancellation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ai_factory.intake.runner import component
from tests.github_standin import GitHubStandin, send_webhook
from tests.github_standin.webhooks import encode_payload, webhook_headers
from tests.support.intake_rig import MAINTAINER, READER, REPO, SECRET, Rig, intake_settings
from tests.support.server import ServerThread

WAIT_S = 60.0


async def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _pending(rig: Rig) -> list[dict]:
    response = rig.http("POST", "/api/intake/requests/take")
    response.raise_for_status()
    return response.json()


async def test_a_signed_labeled_delivery_is_accepted_and_enqueued(rig: Rig) -> None:
    number = rig.open_issue()
    delivery = rig.deliver("labeled", number, label="ai-factory")

    assert delivery.status == 202
    assert json.loads(delivery.response_body)["status"] == "intake"
    [request] = _pending(rig)
    assert (request["repo"], request["issueNumber"], request["reason"]) == (REPO, number, "labeled")
    assert rig.items(number) == []  # the webhook only enqueues; the intake loop does the work


@pytest.mark.parametrize("signature", ["wrong", "missing", "sha1-only"])
async def test_bad_or_missing_signatures_get_401(rig: Rig, signature: str) -> None:
    number = rig.open_issue()
    payload = rig.standin.issues_webhook_payload(
        REPO, number, "labeled", sender=MAINTAINER, label="ai-factory"
    )
    body = encode_payload(payload)
    headers = webhook_headers(
        "issues", body, "not the secret" if signature == "wrong" else SECRET, "d-1"
    )
    if signature != "wrong":
        del headers[
            "X-Hub-Signature-256"
        ]  # "missing" keeps no signature at all, "sha1-only" the old one
    if signature == "missing":
        del headers["X-Hub-Signature"]

    response = rig.http("POST", "/webhooks/github", content=body, headers=headers)

    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert _pending(rig) == []


def test_without_a_configured_secret_every_delivery_gets_401(
    tmp_path: Path, database_url: str, standin: GitHubStandin
) -> None:
    settings = intake_settings(tmp_path, database_url, standin, github_webhook_secret=None)
    server = ServerThread(settings).start()
    try:
        number = standin.create_issue(
            REPO, "x", "- [ ] Run `true`", labels=["ai-factory"], labeled_by=MAINTAINER
        )
        payload = standin.issues_webhook_payload(
            REPO, number, "labeled", sender=MAINTAINER, label="ai-factory"
        )
        for secret in (SECRET, "", None):
            delivery = send_webhook(f"{server.url}/webhooks/github", "issues", payload, secret)
            assert delivery.status == 401
    finally:
        server.stop()


async def test_a_replayed_delivery_is_a_no_op(rig: Rig) -> None:
    number = rig.open_issue()
    first = rig.deliver("labeled", number, label="ai-factory", delivery_id="72d3162e-cc78-11e3")
    assert first.status == 202
    assert _pending(rig)  # taken; a replay must not enqueue it again

    replay = rig.deliver("labeled", number, label="ai-factory", delivery_id="72d3162e-cc78-11e3")

    assert replay.status == 200
    assert json.loads(replay.response_body)["status"] == "duplicate"
    assert _pending(rig) == []


async def test_deliveries_from_other_repositories_and_other_events_are_ignored(rig: Rig) -> None:
    rig.standin.create_repo("acme", "other")
    number = rig.standin.create_issue(
        "acme/other", "x", "- [ ] Run `true`", labels=["ai-factory"], labeled_by=MAINTAINER
    )
    payload = rig.standin.issues_webhook_payload(
        "acme/other", number, "labeled", sender=MAINTAINER, label="ai-factory"
    )
    other = send_webhook(f"{rig.api.url}/webhooks/github", "issues", payload, SECRET)
    ping = send_webhook(
        f"{rig.api.url}/webhooks/github", "ping", {"zen": "Keep it simple."}, SECRET
    )
    mine = rig.open_issue()
    unrelated_label = rig.deliver("labeled", mine, label="bug")

    assert (other.status, ping.status, unrelated_label.status) == (202, 202, 202)
    assert _pending(rig) == []


async def test_labelling_is_picked_up_at_once_by_factory_up(rig: Rig, tmp_path: Path) -> None:
    """Intake inside the orchestrator (as `factory up` runs it): the webhook wakes it up.

    The first poll runs at start-up, before the issues exist; the next one is an hour away.
    """
    standin = rig.standin
    settings = intake_settings(
        tmp_path, rig.settings.database_url or "", standin, poll_interval_ms=3_600_000
    )
    intake = component(settings, github=rig.github(), generator=rig.generator())
    assert intake is not None
    server = ServerThread(settings, components=[intake]).start()
    try:
        number = standin.create_issue(
            REPO, "Greeting", "- [ ] Run `true`", labels=["ai-factory"], labeled_by=MAINTAINER
        )
        untrusted = standin.create_issue(
            REPO, "Sneaky", "- [ ] Run `true`", labels=["ai-factory"], labeled_by=READER
        )
        url = f"{server.url}/webhooks/github"
        for issue, sender in ((number, MAINTAINER), (untrusted, READER)):
            payload = standin.issues_webhook_payload(
                REPO, issue, "labeled", sender=sender, label="ai-factory"
            )
            assert send_webhook(url, "issues", payload, SECRET).status == 202

        def items(issue: int) -> list[dict]:
            return httpx.get(f"{server.url}/api/work", params={"sourceId": str(issue)}).json()

        await _wait_for(lambda: standin.labels(REPO, number) == ["ai-factory-processing"], "pickup")
        await _wait_for(lambda: standin.labels(REPO, untrusted) == [], "the rejection")
        assert len(items(number)) == 1 and items(untrusted) == []
        assert len(standin.comments(REPO, number)) == 1
        assert len(standin.comments(REPO, untrusted)) == 1
    finally:
        server.stop()


async def test_closing_the_issue_cancels_a_queued_item(rig: Rig) -> None:
    number = rig.open_issue()
    service = rig.service()
    await service.poll_once()
    rig.standin.close_issue(REPO, number, by=MAINTAINER, state_reason="not_planned")

    closed = rig.deliver("closed", number, sender=MAINTAINER)

    assert closed.status == 202
    item = rig.item(number)
    assert item["status"] == "cancelled"
    assert json.loads(closed.response_body)["cancelled"] == item["id"]
    await service.poll_once()
    await service.poll_once()
    comments = rig.comments(number)
    assert len(comments) == 2 and "cancelled" in comments[1]
    assert rig.labels(number) == []


async def test_removing_the_labels_cancels_but_intakes_own_relabel_does_not(rig: Rig) -> None:
    number = rig.open_issue()
    await rig.service().poll_once()
    # What GitHub sends when intake itself swapped ai-factory for ai-factory-processing:
    own = rig.deliver("unlabeled", number, label="ai-factory", sender=rig.standin.token_user)
    assert own.status == 202 and rig.item(number)["status"] == "queued"

    rig.standin.remove_label(REPO, number, "ai-factory-processing", by=MAINTAINER)
    human = rig.deliver("unlabeled", number, label="ai-factory-processing", sender=MAINTAINER)

    assert human.status == 202
    assert rig.item(number)["status"] == "cancelled"


async def test_an_item_a_worker_has_claimed_is_not_cancelled(rig: Rig) -> None:
    number = rig.open_issue()
    await rig.service().poll_once()
    item = rig.item(number)
    rig.http("POST", "/api/worker/register", json={"workItemId": item["id"]}).raise_for_status()
    rig.standin.close_issue(REPO, number, by=MAINTAINER)

    assert rig.deliver("closed", number).status == 202

    assert rig.item(number)["status"] == "running"

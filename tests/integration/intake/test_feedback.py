"""The issue hears how it ended: one final comment, the final label, never twice.

A worker is played through the real worker API (register, then complete, fail or
stuck). Each poll uses a fresh intake service, as after a restart: what was said
is read back from the issue, not remembered.
"""

from __future__ import annotations

from tests.support.intake_rig import MAINTAINER, REPO, Rig


async def _picked_up(rig: Rig) -> tuple[int, str]:
    number = rig.open_issue()
    await rig.service().poll_once()
    return number, rig.item(number)["id"]


async def test_completed_item_gets_pr_link_usage_and_done_label(rig: Rig) -> None:
    number, item_id = await _picked_up(rig)
    pr_url = f"{rig.standin.web_url}/acme/widgets/pull/42"
    rig.as_worker(item_id, "complete", prUrl=pr_url, iterations=3, tokens=12345, costUsd=0.4271)

    for _ in range(3):
        await rig.service().poll_once()

    comments = rig.comments(number)
    assert len(comments) == 2
    assert pr_url in comments[1]
    assert "| 3 | 12,345 | $0.43 |" in comments[1]
    assert rig.labels(number) == ["ai-factory-done"]


async def test_failed_item_gets_the_reason_and_failed_label(rig: Rig) -> None:
    number, item_id = await _picked_up(rig)
    rig.as_worker(
        item_id, "fail", error="quality gate failed 3 times: pytest exited 1", iteration=4
    )

    for _ in range(3):
        await rig.service().poll_once()

    comments = rig.comments(number)
    assert len(comments) == 2
    assert "could not finish" in comments[1]
    assert "quality gate failed 3 times: pytest exited 1" in comments[1]
    assert f"factory show {item_id}" in comments[1]
    assert rig.labels(number) == ["ai-factory-failed"]


async def test_stuck_item_is_reported_and_relabelling_retries_it(rig: Rig) -> None:
    number, item_id = await _picked_up(rig)
    rig.as_worker(item_id, "stuck", reason="no progress in 3 iterations on task 2", attempts=3)
    await rig.service().poll_once()
    assert rig.labels(number) == ["ai-factory-failed"]
    assert "no progress in 3 iterations on task 2" in rig.comments(number)[1]

    rig.standin.add_label(REPO, number, "ai-factory", by=MAINTAINER)
    await rig.service().poll_once()

    item = rig.item(number)  # the same item, queued again
    assert (item["id"], item["status"]) == (item_id, "queued")
    comments = rig.comments(number)
    assert len(comments) == 3 and "trying this issue again" in comments[2]
    assert rig.labels(number) == ["ai-factory-processing"]


async def test_relabelling_a_finished_issue_starts_new_work(rig: Rig) -> None:
    number, item_id = await _picked_up(rig)
    rig.as_worker(item_id, "fail", error="boom")
    await rig.service().poll_once()

    rig.standin.add_label(REPO, number, "ai-factory", by=MAINTAINER)
    await rig.service().poll_once()
    await rig.service().poll_once()

    items = rig.items(number)
    assert [i["status"] for i in items] == ["queued", "failed"]
    assert len(rig.comments(number)) == 3
    assert rig.labels(number) == ["ai-factory-processing"]


async def test_nothing_is_said_while_the_item_is_still_running(rig: Rig) -> None:
    number, item_id = await _picked_up(rig)
    rig.as_worker(item_id, "heartbeat", iteration=1, tokens=10, phase="running")

    await rig.service().poll_once()

    assert len(rig.comments(number)) == 1
    assert rig.labels(number) == ["ai-factory-processing"]

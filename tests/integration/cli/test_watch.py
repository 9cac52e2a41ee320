"""Following an item from the command line: `factory submit --wait`, `factory watch`,
`factory show` of a finished item, and `factory status` with stuck items, against a
real orchestrator spawning fake workers."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.support.running_factory import spec

REPO = "https://git.example/srv/widgets.git"


def factory_cli(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "ORCHESTRATOR_URL": url}
    return subprocess.run([sys.executable, "-m", "ai_factory", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip


def test_submit_wait_follows_the_item_and_exits_0_with_its_result(start_factory) -> None:
    factory = start_factory()
    done = factory_cli(factory.server.url, "submit", "--repo", REPO, "--spec", spec(seconds=2, title="Waited"), "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    item_id = lines[0]
    assert len(item_id) == 36
    assert any(line.startswith("running, tasks 0/1") for line in lines), done.stdout
    assert lines[-1] == f"completed: https://example.invalid/pr/{item_id}"


def test_watch_exits_non_zero_when_the_item_fails(start_factory) -> None:
    factory = start_factory()
    item = factory.submit(spec(mode="fail", seconds=1))
    done = factory_cli(factory.server.url, "watch", item["id"][:8])
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "failed: fake failure"
    cancelled = factory.submit(spec(mode="forever"))
    factory.running_worker(cancelled["id"])
    factory.http.post(f"/api/work/{cancelled['id']}/cancel")
    assert factory_cli(factory.server.url, "watch", cancelled["id"]).returncode == 3


def test_show_of_a_completed_item_prints_its_boxes_checked(start_factory) -> None:
    factory = start_factory()
    text = "# Two steps\nfake-seconds: 0.2\n- [ ] first\n- [ ] second\n"
    item = factory.submit(text)
    factory.wait_status(item["id"], "completed")
    shown = factory_cli(factory.server.url, "show", item["id"])
    assert shown.returncode == 0, shown.stderr
    assert "- [x] first\n- [x] second" in shown.stdout and "- [ ]" not in shown.stdout
    assert "2/2 tasks done" in shown.stdout


def test_status_shows_stuck_apart_from_failed(start_factory) -> None:
    factory = start_factory(max_workers=0)
    stuck = factory.submit(spec())
    failed = factory.submit(spec(title="Other"))
    for item, action in ((stuck, "stuck"), (failed, "fail")):
        reg = factory.http.post("/api/worker/register", json={"workItemId": item["id"]}).json()
        headers = {"Authorization": f"Bearer {reg['token']}"}
        body = {"reason": "no progress"} if action == "stuck" else {"error": "boom"}
        answer = httpx.post(f"{factory.server.url}/api/worker/{reg['workerId']}/{action}", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
    status = factory_cli(factory.server.url, "status")
    assert status.returncode == 0, status.stderr
    assert "failed 1  stuck 1" in status.stdout

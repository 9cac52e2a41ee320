"""The HTTP API over real HTTP: shapes, status codes, errors, auth."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ai_factory.orchestrator.api.body_size import MAX_BODY_BYTES
from tests.support.server import ServerThread
from tests.support.settings import make_settings

SPEC = "# Add greeting\n- [ ] Create `hello.py`\n"


@pytest.fixture
def http(api: ServerThread):
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


def submit(http: httpx.Client, **body) -> httpx.Response:
    return http.post("/api/work", json={"repo": "https://git.example/srv/widgets.git", "spec": SPEC, **body})


def test_submit_then_get_round_trips_camel_case(http: httpx.Client) -> None:
    created = submit(http, priority="high", baseBranch="develop", sourceUrl="http://x/1")
    assert created.status_code == 201
    item = created.json()
    assert item["status"] == "queued" and item["priority"] == "high"
    assert item["baseBranch"] == "develop" and item["sourceUrl"] == "http://x/1"
    assert item["source"] == "api" and item["sourceId"]
    fetched = http.get(f"/api/work/{item['id']}").json()
    assert fetched["id"] == item["id"] and fetched["spec"] == SPEC


def test_second_submit_of_the_same_issue_returns_the_existing_item(http: httpx.Client) -> None:
    body = {"source": "github", "sourceId": "17", "repo": "https://github.com/acme/w.git"}
    first = submit(http, **body)
    second = submit(http, **body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"repo": "/r"}, 422, "spec"),
        ({"repo": "/r", "spec": ""}, 422, "spec"),
        ({"repo": "", "spec": SPEC}, 422, "repo"),
        ({"spec": SPEC}, 422, "repo"),
        ({"repo": "/r", "spec": SPEC, "priority": "urgent"}, 422, "priority"),
        ({"repo": "/r", "spec": SPEC, "baseBranch": "--upload-pack=touch /tmp/pwned"}, 422, "branch"),
        ({"repo": "/r", "spec": SPEC, "source": "jira"}, 422, "source"),
    ],
)
def test_invalid_bodies_get_422_with_a_useful_message(http: httpx.Client, body, status, fragment) -> None:
    response = http.post("/api/work", json=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]


def test_malformed_json_is_422_not_500(http: httpx.Client) -> None:
    response = http.post("/api/work", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]


def test_body_over_the_cap_is_413(http: httpx.Client) -> None:
    response = submit(http, spec="x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_chunked_body_over_the_cap_is_413(http: httpx.Client) -> None:
    def chunks():
        yield b'{"repo": "/r", "spec": "'
        for _ in range(MAX_BODY_BYTES // 100_000 + 1):
            yield b"y" * 100_000
        yield b'"}'

    response = http.post("/api/work", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize("item_id", [str(uuid.uuid4()), "nope", "12345"])
def test_unknown_or_malformed_ids_are_404(http: httpx.Client, item_id: str) -> None:
    for method, path in (
        ("GET", f"/api/work/{item_id}"),
        ("POST", f"/api/work/{item_id}/cancel"),
        ("POST", f"/api/work/{item_id}/retry"),
    ):
        response = http.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "not found" in response.json()["error"]


def test_cancel_twice_is_409(http: httpx.Client) -> None:
    item = submit(http).json()
    first = http.post(f"/api/work/{item['id']}/cancel")
    assert first.status_code == 200 and first.json()["success"] is True
    assert first.json()["item"]["status"] == "cancelled"
    second = http.post(f"/api/work/{item['id']}/cancel")
    assert second.status_code == 409 and "cancelled" in second.json()["error"]


def test_retry_of_a_queued_item_is_409_and_of_a_cancelled_one_works(http: httpx.Client) -> None:
    item = submit(http).json()
    assert http.post(f"/api/work/{item['id']}/retry").status_code == 409
    http.post(f"/api/work/{item['id']}/cancel")
    retried = http.post(f"/api/work/{item['id']}/retry")
    assert retried.status_code == 200 and retried.json()["item"]["status"] == "queued"


def test_list_filters_by_status_and_repo(http: httpx.Client) -> None:
    a = submit(http, repo="https://git.example/srv/a.git").json()
    submit(http, repo="https://git.example/srv/b.git")
    http.post(f"/api/work/{a['id']}/cancel")
    assert [i["id"] for i in http.get("/api/work", params={"status": "cancelled"}).json()] == [a["id"]]
    assert {i["repo"] for i in http.get("/api/work", params={"repo": "https://git.example/srv/b.git"}).json()} == {"https://git.example/srv/b.git"}
    assert len(http.get("/api/work", params={"limit": 1}).json()) == 1
    gh = submit(http, source="github", sourceId="99", repo="https://github.com/acme/w.git").json()
    found = http.get("/api/work", params={"source": "github", "sourceId": "99", "repo": "https://github.com/acme/w.git"}).json()
    assert [i["id"] for i in found] == [gh["id"]]
    assert http.get("/api/work", params={"source": "github", "sourceId": "98"}).json() == []
    assert http.get("/api/work", params={"source": "jira"}).status_code == 422
    bad = http.get("/api/work", params={"status": "sleeping"})
    assert bad.status_code == 422 and "status" in bad.json()["error"]
    assert http.get("/api/work", params={"limit": 0}).status_code == 422
    assert http.get("/api/queue").json()[0]["repo"] == "https://github.com/acme/w.git"


def test_item_events_record_each_change(http: httpx.Client) -> None:
    item = submit(http).json()
    http.post(f"/api/work/{item['id']}/cancel")
    detail = http.get(f"/api/work/{item['id']}", params={"events": "true"}).json()
    assert [(e["fromStatus"], e["toStatus"]) for e in detail["events"]] == [(None, "queued"), ("queued", "cancelled")]


def test_status_and_metrics_have_the_reference_fields(http: httpx.Client) -> None:
    submit(http)
    status = http.get("/api/status").json()
    assert status["queue"]["queued"] == 1
    assert {"active", "stuck"} <= status["workers"].keys()
    assert {"activeWorkers", "maxWorkers", "iterationsToday", "dailyBudget", "canSpawn"} <= status["rateLimits"].keys()
    expected = {
        "totalWorkItems", "completedWorkItems", "failedWorkItems", "averageIterations",
        "averageDuration", "totalTokensToday", "activeWorkers", "queueDepth",
    }
    assert expected <= status["metrics"].keys()
    assert expected <= http.get("/api/metrics").json().keys()


def test_openapi_and_health_are_served(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    assert "/api/work" in schema["paths"] and "/api/worker/{worker_id}/heartbeat" in schema["paths"]
    assert http.get("/healthz").json()["status"] == "ok"


# --- worker protocol ---


def register_external(http: httpx.Client) -> tuple[dict, dict]:
    item = submit(http).json()
    reg = http.post("/api/worker/register", json={"workItemId": item["id"]})
    assert reg.status_code == 200, reg.text
    return item, reg.json()


def test_worker_lifecycle_complete(http: httpx.Client) -> None:
    item, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    wid = reg["workerId"]
    assert http.get(f"/api/work/{item['id']}").json()["status"] == "running"
    beat = http.post(f"/api/worker/{wid}/heartbeat", json={"iteration": 1, "tokens": 500, "phase": "running"}, headers=auth)
    assert beat.status_code == 200 and beat.json() == {"success": True}
    it = http.post(
        f"/api/worker/{wid}/iteration",
        json={"iteration": 1, "inputTokens": 300, "outputTokens": 200, "costUsd": 0.01, "outcome": "progress", "filesEdited": ["src/a.py"], "doneTasks": ["Create `hello.py`"]},
        headers=auth,
    )
    assert it.status_code == 200
    assert http.get("/api/status").json()["rateLimits"]["iterationsToday"] == 1
    resets = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    limit = http.post(
        f"/api/worker/{wid}/limited",
        json={"status": "rejected", "resetsAt": resets.isoformat(), "rateLimitType": "five_hour"},
        headers=auth,
    )
    assert limit.status_code == 200
    limits = http.get("/api/status").json()["rateLimits"]
    assert limits["canSpawn"] is False and "usage_limit" in limits["blockedBy"]
    assert datetime.fromisoformat(limits["pausedUntil"]) == resets
    assert limits["pauseReason"] == "five_hour usage limit"
    pause = http.get(f"/api/worker/{wid}/pause", headers=auth).json()  # what every worker asks
    assert datetime.fromisoformat(pause["pausedUntil"]) == resets and pause["rateLimitType"] == "five_hour"
    trail = http.get(f"/api/work/{item['id']}/events").json()
    assert {"iteration", "limit"} <= {e["kind"] for e in trail}
    reported = next(e for e in trail if e["kind"] == "iteration")
    assert reported["data"]["doneTasks"] == ["Create `hello.py`"] and reported["data"]["inputTokens"] == 300
    lock = http.post(f"/api/worker/{wid}/lock", json={"files": ["src/a.py"]}, headers=auth).json()
    assert lock == {"acquired": ["src/a.py"], "conflicts": []}
    done = http.post(
        f"/api/worker/{wid}/complete",
        json={"prUrl": "/srv/widgets#factory/abc", "iterations": 2, "tokens": 900, "costUsd": 0.25, "filesChanged": ["src/a.py"], "newLearnings": ["run make lint first"]},
        headers=auth,
    )
    assert done.status_code == 200
    finished = http.get(f"/api/work/{item['id']}").json()
    assert finished["status"] == "completed" and finished["prUrl"] == "/srv/widgets#factory/abc"
    assert finished["iterations"] == 2 and finished["tokens"] == 900
    learned = http.get("/api/learnings", params={"repo": "https://git.example/srv/widgets.git"}).json()
    assert [l["content"] for l in learned] == ["run make lint first"]
    metrics = http.get("/api/metrics").json()
    assert metrics["recent"][0]["status"] == "completed"
    assert metrics["costPerCompletedItemUsd"] == finished["costUsd"] > 0
    assert f"factory_cost_per_completed_item_usd {finished['costUsd']}" in http.get("/metrics").text
    # A second completion from the same worker is refused.
    again = http.post(f"/api/worker/{wid}/complete", json={"prUrl": "x", "iterations": 1, "tokens": 1}, headers=auth)
    assert again.status_code == 409


def test_worker_routes_need_the_workers_own_token(http: httpx.Client) -> None:
    _, reg = register_external(http)
    wid = reg["workerId"]
    body = {"iteration": 1, "tokens": 1, "phase": "running"}
    assert http.post(f"/api/worker/{wid}/heartbeat", json=body).status_code == 401
    assert http.post(f"/api/worker/{wid}/heartbeat", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    unknown = http.post(f"/api/worker/{uuid.uuid4()}/heartbeat", json=body, headers={"Authorization": f"Bearer {reg['token']}"})
    assert unknown.status_code == 404
    assert http.post("/api/worker/garbage/fail", json={"error": "x"}).status_code == 404


def test_second_worker_cannot_take_a_running_item(http: httpx.Client) -> None:
    item, _ = register_external(http)
    again = http.post("/api/worker/register", json={"workItemId": item["id"]})
    assert again.status_code == 409 and "running" in again.json()["error"]


def test_lock_conflicts_between_workers(http: httpx.Client) -> None:
    _, a = register_external(http)
    _, b = register_external(http)
    ha, hb = ({"Authorization": f"Bearer {r['token']}"} for r in (a, b))
    assert http.post(f"/api/worker/{a['workerId']}/lock", json={"files": ["x.py", "y.py"]}, headers=ha).json()["conflicts"] == []
    denied = http.post(f"/api/worker/{b['workerId']}/lock", json={"files": ["y.py", "z.py"]}, headers=hb).json()
    assert denied == {"acquired": [], "conflicts": ["y.py"]}
    # all-or-nothing: z.py was not taken by the failed attempt
    assert http.post(f"/api/worker/{a['workerId']}/lock", json={"files": ["z.py"]}, headers=ha).json()["acquired"] == ["z.py"]
    # b cannot release a's lock
    refused = http.post(f"/api/worker/{b['workerId']}/unlock", json={"files": ["x.py"]}, headers=hb).json()
    assert refused["released"] == [] and refused["notHeld"] == ["x.py"]
    bad = http.post(f"/api/worker/{a['workerId']}/lock", json={"files": ["../../etc/passwd"]}, headers=ha)
    assert bad.status_code == 422


def test_fail_stuck_and_kill(http: httpx.Client) -> None:
    item, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    http.post(f"/api/worker/{reg['workerId']}/heartbeat", json={"iteration": 3, "tokens": 1234, "phase": "running", "costUsd": 0.5}, headers=auth)
    stuck = http.post(f"/api/worker/{reg['workerId']}/stuck", json={"reason": "tests never pass", "attempts": 3}, headers=auth)
    assert stuck.status_code == 200
    stuck_item = http.get(f"/api/work/{item['id']}").json()
    assert stuck_item["status"] == "stuck" and stuck_item["error"] == "tests never pass"
    assert (stuck_item["iterations"], stuck_item["tokens"], stuck_item["costUsd"]) == (3, 1234, 0.5)

    item2, reg2 = register_external(http)
    kill = http.post(f"/api/workers/{reg2['workerId']}/kill", json={"reason": "runaway"})
    assert kill.status_code == 200
    assert http.get(f"/api/work/{item2['id']}").json()["error"] == "Killed: runaway"
    late = http.post(
        f"/api/worker/{reg2['workerId']}/complete",
        json={"prUrl": "x", "iterations": 1, "tokens": 1},
        headers={"Authorization": f"Bearer {reg2['token']}"},
    )
    assert late.status_code == 409
    assert http.post(f"/api/workers/{uuid.uuid4()}/kill").status_code == 404
    workers = http.get("/api/workers", params={"all": "true"}).json()
    assert {w["status"] for w in workers} == {"stuck", "dead"}


def test_bad_worker_bodies_are_422(http: httpx.Client) -> None:
    _, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    wid = reg["workerId"]
    assert http.post(f"/api/worker/{wid}/heartbeat", json={"iteration": -1, "tokens": 0, "phase": "running"}, headers=auth).status_code == 422
    assert http.post(f"/api/worker/{wid}/heartbeat", json={"iteration": 1, "tokens": 0, "phase": "dancing"}, headers=auth).status_code == 422
    assert http.post(f"/api/worker/{wid}/lock", json={"files": []}, headers=auth).status_code == 422
    assert http.post("/api/worker/register", json={"workItemId": "nope"}).status_code == 422


def test_learnings_limits(http: httpx.Client) -> None:
    assert http.get("/api/learnings", params={"limit": 0}).status_code == 422
    assert http.get("/api/learnings", params={"limit": 201}).status_code == 422
    assert http.get("/api/learnings", params={"repo": "/never/seen"}).json() == []
    assert http.post("/api/learnings", json={"content": ""}).status_code == 422
    assert http.post("/api/learnings", json={"content": "x" * 5000}).status_code == 422
    made = http.post("/api/learnings", json={"repo": "https://git.example/srv/a.git", "content": "use uv"}).json()
    assert http.delete(f"/api/learnings/{made['id']}").json() == {"success": True}
    assert http.delete(f"/api/learnings/{made['id']}").status_code == 404


# --- auth on ---


@pytest.fixture
def secured(tmp_path: Path, database_url: str):
    settings = make_settings(tmp_path, database_url=database_url, factory_api_token="t0ken-for-tests")
    server = ServerThread(settings).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def test_with_a_token_every_api_route_but_workers_needs_it(secured: httpx.Client) -> None:
    good = {"Authorization": "Bearer t0ken-for-tests"}
    for method, path in (("GET", "/api/status"), ("GET", "/api/queue"), ("GET", "/api/work"), ("GET", "/api/workers"), ("GET", "/api/metrics"), ("GET", "/api/learnings")):
        denied = secured.request(method, path)
        assert denied.status_code == 401, path
        assert "token" in denied.json()["error"]
        assert secured.request(method, path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert secured.request(method, path, headers=good).status_code == 200, path
    assert secured.post("/api/work", json={"repo": "/r", "spec": SPEC}).status_code == 401
    assert secured.get("/healthz").status_code == 200
    # An unauthenticated client cannot claim work by registering as a worker.
    item = secured.post("/api/work", json={"repo": "https://git.example/r.git", "spec": SPEC}, headers=good).json()
    assert secured.post("/api/worker/register", json={"workItemId": item["id"]}).status_code == 401
    reg = secured.post("/api/worker/register", json={"workItemId": item["id"]}, headers=good).json()
    # Worker routes take the worker's token, not the API token.
    wtoken = {"Authorization": f"Bearer {reg['token']}"}
    beat = {"iteration": 1, "tokens": 1, "phase": "running"}
    assert secured.post(f"/api/worker/{reg['workerId']}/heartbeat", json=beat, headers=wtoken).status_code == 200
    # A worker may read learnings with its own token.
    reader = {**wtoken, "X-Worker-Id": reg["workerId"]}
    assert secured.get("/api/learnings", headers=reader).status_code == 200


def test_prometheus_metrics_show_queue_and_limiter_state(http: httpx.Client) -> None:
    submit(http)
    submit(http)
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'factory_work_items{status="queued"} 2.0' in lines
    assert "factory_queue_depth 2.0" in lines
    assert "factory_active_workers 0.0" in lines
    assert "factory_iterations_today 0.0" in lines
    assert any(line.startswith("factory_can_spawn ") for line in lines)
    assert 'factory_spawn_blocked{reason="usage_limit"} 0.0' in lines


def test_prometheus_metrics_need_the_token_when_set(secured: httpx.Client) -> None:
    assert secured.get("/metrics").status_code == 401
    assert secured.get("/metrics", headers={"Authorization": "Bearer t0ken-for-tests"}).status_code == 200


def test_only_phase_changes_become_events(http: httpx.Client) -> None:
    item, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    for phase in ("running", "running", "gate", "gate", "running"):
        http.post(f"/api/worker/{reg['workerId']}/heartbeat", json={"iteration": 1, "tokens": 10, "phase": phase}, headers=auth)
    phases = [e["data"]["phase"] for e in http.get(f"/api/work/{item['id']}/events").json() if e["kind"] == "phase"]
    assert phases == ["running", "gate", "running"]
    worker = http.get(f"/api/workers/{reg['workerId']}").json()
    assert worker["phase"] == "running" and worker["totalTokens"] == 10 and worker["currentIteration"] == 1


def test_cross_site_browser_posts_are_refused(http: httpx.Client, api: ServerThread) -> None:
    item = submit(http).json()
    forged = http.post(f"/api/work/{item['id']}/cancel", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and forged.json() == {"error": "cross-site request refused"}
    assert http.post(f"/api/work/{item['id']}/cancel", headers={"Origin": "null"}).status_code == 403
    assert http.get(f"/api/work/{item['id']}").json()["status"] == "queued"
    same_site = http.post(f"/api/work/{item['id']}/cancel", headers={"Origin": api.url})
    assert same_site.status_code == 200  # the dashboard's own requests


def test_values_the_database_cannot_hold_are_422_not_500(http: httpx.Client) -> None:
    assert submit(http, spec="a\u0000b").status_code == 422
    for params in ({"repo": "\u0000"}, {"offset": "1e20"}, {"offset": str(2**40)}):
        response = http.get("/api/work", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]
    _, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    wid = reg["workerId"]
    for path, body in (
        ("heartbeat", {"iteration": 2**40, "tokens": 1, "phase": "running"}),
        ("iteration", {"iteration": 2**40}),
        ("complete", {"prUrl": "x", "iterations": 1, "tokens": 1, "costUsd": 1e20}),
        ("stuck", {"reason": "nul \u0000 byte"}),
    ):
        response = http.post(f"/api/worker/{wid}/{path}", json=body, headers=auth)
        assert response.status_code == 422, (path, response.text)
    assert http.post("/api/learnings", json={"content": "nul \u0000"}).status_code == 422
    assert http.get("/api/learnings", params={"search": "\u0000"}).status_code in (200, 422)


def test_a_killed_worker_cannot_act_on_its_old_item_once_reassigned(http: httpx.Client) -> None:
    item, old = register_external(http)
    old_auth = {"Authorization": f"Bearer {old['token']}"}
    assert http.post(f"/api/workers/{old['workerId']}/kill", json={"reason": "hung"}).status_code == 200
    assert http.post(f"/api/work/{item['id']}/retry").status_code == 200
    new = http.post("/api/worker/register", json={"workItemId": item["id"]}).json()
    new_auth = {"Authorization": f"Bearer {new['token']}"}
    for path, body in (
        ("lock", {"files": ["x.py"]}),
        ("iteration", {"iteration": 1, "inputTokens": 10}),
        ("limited", {"status": "rejected", "resetsAt": "2030-01-01T00:00:00Z"}),
        ("heartbeat", {"iteration": 1, "tokens": 1, "phase": "running"}),
    ):
        refused = http.post(f"/api/worker/{old['workerId']}/{path}", json=body, headers=old_auth)
        assert refused.status_code == 409, (path, refused.text)
    status = http.get("/api/status").json()["rateLimits"]
    assert status["iterationsToday"] == 0 and "usage_limit" not in status["blockedBy"]
    took = http.post(f"/api/worker/{new['workerId']}/lock", json={"files": ["x.py"]}, headers=new_auth)
    assert took.json() == {"acquired": ["x.py"], "conflicts": []}


def test_a_worker_that_reported_stuck_is_no_longer_live(http: httpx.Client) -> None:
    item, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    http.post(f"/api/worker/{reg['workerId']}/stuck", json={"reason": "no way forward"}, headers=auth)
    assert http.get("/api/status").json()["workers"] == {"active": 0, "stuck": 0}
    assert http.get("/api/workers").json() == []
    history = http.get("/api/workers", params={"all": "true"}).json()
    assert [(w["id"], w["status"]) for w in history] == [(reg["workerId"], "stuck")]
    assert http.get("/api/status").json()["rateLimits"]["activeWorkers"] == 0


def test_worker_output_served_by_the_api_never_shows_a_known_secret(tmp_path: Path, database_url: str) -> None:
    from ai_factory.core.logging import register_secret

    secret = "ghp_" + "x" * 36
    register_secret(secret)
    settings = make_settings(tmp_path, database_url=database_url)
    server = ServerThread(settings).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            item = submit(http).json()
            assert server.services is not None
            log_path = server.services.logs.path(uuid.UUID(item["id"]))
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(f"pushing with token {secret}\ndone\n")
            text = http.get(f"/api/work/{item['id']}/logs").json()["text"]
    finally:
        server.stop()
    assert secret not in text and "pushing with token ***" in text


def test_a_live_worker_whose_item_was_cancelled_is_refused_a_heartbeat(http: httpx.Client) -> None:
    item, reg = register_external(http)
    auth = {"Authorization": f"Bearer {reg['token']}"}
    beat = {"iteration": 1, "tokens": 1, "phase": "running"}
    assert http.post(f"/api/worker/{reg['workerId']}/heartbeat", json=beat, headers=auth).status_code == 200
    assert http.post(f"/api/work/{item['id']}/cancel").status_code == 200
    refused = http.post(f"/api/worker/{reg['workerId']}/heartbeat", json=beat, headers=auth)
    assert refused.status_code == 409
    assert "cancelled" in refused.text and "no longer current" in refused.text

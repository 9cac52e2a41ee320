"""Hostile or borderline request bodies over real HTTP: deep nesting and the size limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from ai_factory.core.models.work import MAX_SPEC_CHARS
from tests.github_standin.webhooks import webhook_headers
from tests.support.server import ServerThread
from tests.support.settings import make_settings

SECRET = "webhook secret for tests"
JSON = {"content-type": "application/json"}
# Deeper than the Python stack can parse, and shallow enough for json.loads to parse.
DEPTHS = [100_000, 900]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """An orchestrator with the webhook route on (intake configured, GitHub never called)."""
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        github_token="ghp_not_used",
        repos=["acme/widgets"],
        github_webhook_secret=SECRET,
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_refused(response: httpx.Response) -> None:
    """Refused as invalid input (as a syntax error is), with the API's error body."""
    assert response.status_code == 422, (response.status_code, response.text[:200])
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def recorded(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM intake_requests)"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_signed_webhook_of_deeply_nested_json_is_refused_and_not_recorded(
    http: httpx.Client, database_url: str, depth: int
) -> None:
    body = nested(depth)
    headers = webhook_headers("issues", body, SECRET, f"deep-{depth}")

    response = http.post("/webhooks/github", content=body, headers=headers)

    assert_refused(response)
    assert recorded(database_url) == (0, 0)


def test_a_signed_webhook_with_deeply_nested_fields_is_answered(
    http: httpx.Client, database_url: str
) -> None:
    deep = "[" * 900 + "]" * 900
    body = (
        f'{{"action": {deep}, "label": {{"name": {deep}}}, "repository": {{"full_name": '
        f'"acme/widgets", "clone_url": {deep}}}, "issue": {{"number": 7, "labels": [{deep}]}}}}'
    ).encode()
    assert json.loads(body)["issue"]["number"] == 7
    headers = webhook_headers("issues", body, SECRET, "deep-fields")

    response = http.post("/webhooks/github", content=body, headers=headers)

    assert response.status_code < 500, response.text[:200]
    assert response.json().get("status") == "ignore" or response.json().get("error")


@pytest.mark.parametrize("depth", DEPTHS)
def test_deeply_nested_json_on_api_routes_is_a_4xx(http: httpx.Client, depth: int) -> None:
    item = http.post("/api/work", json={"repo": "https://git.example/srv/w.git", "spec": "- [ ] x\n"}).json()
    worker = http.post("/api/worker/register", json={"workItemId": item["id"]}).json()
    auth = {"Authorization": f"Bearer {worker['token']}", **JSON}
    inner = b'{"repo": "/r", "spec": ' + nested(depth) + b"}"
    for path, body, headers in (
        ("/api/work", nested(depth), JSON),
        ("/api/work", inner, JSON),
        ("/api/worker/register", nested(depth), JSON),
        (f"/api/worker/{worker['workerId']}/heartbeat", nested(depth), auth),
        (f"/api/worker/{worker['workerId']}/complete", nested(depth), auth),
        (f"/api/workers/{worker['workerId']}/kill", nested(depth), JSON),
        ("/api/learnings", nested(depth), JSON),
    ):
        assert_refused(http.post(path, content=body, headers=headers))
    assert_refused(http.patch(f"/api/work/{item['id']}", content=nested(depth), headers=JSON))
    assert http.get(f"/api/work/{item['id']}").json()["status"] == "running"


def test_a_json_body_that_is_not_utf8_is_422_like_any_bad_json(http: httpx.Client) -> None:
    response = http.post("/api/work", content=b'{"repo": "\xff", "spec": "x"}', headers=JSON)
    assert_refused(response)
    assert "JSON" in response.json()["error"]


@pytest.mark.parametrize("char", ['"', "\n", "\u00e9", "\u2028", "\U0001f600"])
def test_a_spec_of_the_maximum_size_is_accepted_whatever_it_is_made_of(
    http: httpx.Client, char: str
) -> None:
    spec = "- [ ] x\n" + char * (MAX_SPEC_CHARS - len("- [ ] x\n"))
    assert len(spec) == MAX_SPEC_CHARS
    for ensure_ascii in (True, False):  # "\u00e9" escapes (6 bytes) or raw UTF-8 (2 bytes)
        body = json.dumps({"repo": "https://git.example/srv/w.git", "spec": spec}, ensure_ascii=ensure_ascii).encode()
        response = http.post("/api/work", content=body, headers=JSON)
        assert response.status_code in (200, 201), response.text[:200]
        assert len(http.get(f"/api/work/{response.json()['id']}").json()["spec"]) == MAX_SPEC_CHARS


def test_one_character_over_the_maximum_spec_is_422_not_413(http: httpx.Client) -> None:
    for char in ("x", '"', "\U0001f600"):
        body = json.dumps({"repo": "https://git.example/srv/w.git", "spec": char * (MAX_SPEC_CHARS + 1)}).encode()
        response = http.post("/api/work", content=body, headers=JSON)
        assert response.status_code == 422, (char, response.status_code)
        assert "spec" in response.json()["error"]

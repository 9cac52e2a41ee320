"""The learnings HTTP API over real HTTP: save, dedupe, scope, search, use counts, errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ServerThread


@pytest.fixture
def http(api: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


def add(http: httpx.Client, content: str, repo: str | None = None) -> httpx.Response:
    body = {"content": content} if repo is None else {"repo": repo, "content": content}
    return http.post("/api/learnings", json=body)


def test_save_dedupe_scope_and_search(http: httpx.Client) -> None:
    first = add(http, "Database migrations are generated with make migration.", "acme/shop")
    assert first.status_code == 201
    learning = first.json()
    assert learning["repo"] == "acme/shop" and learning["useCount"] == 0
    assert {"id", "content", "createdAt", "scope", "saveCount"} <= set(learning)

    again = add(http, "database migrations are generated with make migration", "acme/shop")
    assert again.status_code == 200
    assert again.json()["id"] == learning["id"] and again.json()["saveCount"] == 2

    glob = add(http, "Rebase on the base branch before opening a pull request.")
    assert glob.status_code == 201 and glob.json()["repo"] == "*" and glob.json()["scope"] == "global"
    assert add(http, "Infra: pin provider versions.", "acme/infra").status_code == 201

    listed = http.get("/api/learnings", params={"repo": "acme/shop"}).json()
    assert {l["content"] for l in listed} == {
        "Database migrations are generated with make migration.",
        "Rebase on the base branch before opening a pull request.",
    }
    assert all(l["useCount"] == 0 for l in listed)

    found = http.get(
        "/api/learnings", params={"repo": "acme/shop", "search": "add a migration", "limit": 1}
    ).json()
    assert [l["id"] for l in found] == [learning["id"]]
    assert found[0]["useCount"] == 1 and found[0]["score"] > 0
    assert http.get("/api/learnings", params={"repo": "unknown/repo"}).json()[0]["repo"] == "*"
    assert len(http.get("/api/learnings").json()) == 3


def test_bad_input_is_refused(http: httpx.Client) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "many"}):
        response = http.get("/api/learnings", params=params)
        assert response.status_code == 422 and "limit" in response.json()["error"]
    assert http.get("/api/learnings", params={"repo": "never/seen"}).json() == []
    for body in ({"content": ""}, {"content": "   "}, {"content": "x" * 4097}, {"repo": "r"}):
        response = http.post("/api/learnings", json=body)
        assert response.status_code == 422 and "content" in response.json()["error"]
    assert http.post("/api/learnings", content=b"{", headers={"content-type": "application/json"}).status_code == 422
    assert add(http, "x" * 4096, "r").status_code == 201


def test_delete(http: httpx.Client) -> None:
    made = add(http, "Use uv, not pip.", "acme/shop").json()
    assert http.delete(f"/api/learnings/{made['id']}").json() == {"success": True}
    assert http.delete(f"/api/learnings/{made['id']}").status_code == 404
    assert http.delete("/api/learnings/not-a-uuid").status_code == 404
    assert http.get("/api/learnings", params={"repo": "acme/shop"}).json() == []

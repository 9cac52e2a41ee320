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


def test_edit_and_mark_obsolete(http: httpx.Client) -> None:
    made = add(http, "Use uv, not pip.", "acme/shop").json()
    edited = http.patch(f"/api/learnings/{made['id']}", json={"content": "Use uv sync, never pip install."})
    assert edited.status_code == 200 and edited.json()["content"] == "Use uv sync, never pip install."
    assert edited.json()["updatedAt"] and edited.json()["obsoleteAt"] is None

    obsolete = http.patch(f"/api/learnings/{made['id']}", json={"obsolete": True}).json()
    assert obsolete["obsoleteAt"] is not None
    assert http.get("/api/learnings", params={"repo": "acme/shop"}).json() == []
    assert http.get("/api/learnings", params={"repo": "acme/shop", "search": "uv sync"}).json() == []
    listed = http.get("/api/learnings", params={"repo": "acme/shop", "includeObsolete": "true"}).json()
    assert [l["id"] for l in listed] == [made["id"]]
    assert http.patch(f"/api/learnings/{made['id']}", json={"obsolete": False}).json()["obsoleteAt"] is None

    other = add(http, "Run make lint before committing.", "acme/shop").json()
    assert http.patch(f"/api/learnings/{other['id']}", json={"content": "use uv sync, never pip install"}).status_code == 409
    assert http.patch(f"/api/learnings/{other['id']}", json={"content": ""}).status_code == 422
    assert http.patch("/api/learnings/00000000-0000-0000-0000-000000000000", json={"obsolete": True}).status_code == 404


def test_a_worker_gets_its_repo_s_learnings_within_the_budget(http: httpx.Client) -> None:
    repo = "https://github.com/acme/shop"
    item = http.post("/api/work", json={"repo": repo, "spec": "# Add a migration\n- [ ] Add it\n"}).json()
    add(http, "Database migrations are generated with make migration.", item["repo"])
    add(http, "Rebase on the base branch before opening a pull request.")
    add(http, "Not about the shop at all.", "acme/infra")
    worker = http.post("/api/worker/register", json={"workItemId": item["id"]}).json()
    auth = {"Authorization": f"Bearer {worker['token']}"}
    given = http.get(
        f"/api/worker/{worker['workerId']}/learnings", params={"search": "Add a migration"}, headers=auth
    )
    assert given.status_code == 200, given.text
    body = given.json()
    assert [l["content"] for l in body["learnings"]] == [
        "Database migrations are generated with make migration.",
        "Rebase on the base branch before opening a pull request.",
    ]
    assert body["budgetTokens"] == 1500 and 0 < body["tokens"] == body["scopeTokens"]
    listed = http.get("/api/learnings", params={"repo": item["repo"]}).json()
    assert all(l["lastGivenWorkItemId"] == item["id"] and l["lastGivenStatus"] == "running" for l in listed)
    assert all(l["givenCount"] == 1 and l["useCount"] == 1 for l in listed)
    assert http.get(f"/api/worker/{worker['workerId']}/learnings", headers={"Authorization": "Bearer wrong"}).status_code == 401

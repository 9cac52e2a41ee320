"""The learnings page over plain HTTP: edit a learning, mark it obsolete, make it current."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.dashboard.test_dashboard_http import csrf_of
from tests.support.server import ServerThread


@pytest.fixture
def browser(api: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


def test_edit_mark_obsolete_and_make_current(browser: httpx.Client) -> None:
    made = browser.post("/api/learnings", json={"repo": "acme/shop", "content": "Use pip."}).json()
    page = browser.get("/learnings", params={"repo": "acme/shop", "edit": made["id"]})
    assert "<textarea" in page.text and "Use pip." in page.text
    csrf = csrf_of(page.text)
    url = f"/learnings/{made['id']}/edit"

    saved = browser.post(url, data={"content": "Use uv, never pip.", "back": "/learnings?repo=acme/shop", "csrf": csrf})
    assert saved.status_code == 303 and saved.headers["location"] == "/learnings?repo=acme/shop"
    assert "Use uv, never pip." in browser.get("/learnings", params={"repo": "acme/shop"}).text

    assert browser.post(url, data={"obsolete": "1", "csrf": csrf}).status_code == 303
    assert "Use uv, never pip." not in browser.get("/learnings", params={"repo": "acme/shop"}).text
    listed = browser.get("/learnings", params={"repo": "acme/shop", "obsolete": "true"}).text
    assert "Use uv, never pip." in listed and "Make current" in listed

    assert browser.post(url, data={"obsolete": "0", "csrf": csrf}).status_code == 303
    assert "Mark obsolete" in browser.get("/learnings", params={"repo": "acme/shop"}).text
    assert browser.post(url, data={"content": "x" * 5000, "csrf": csrf}).status_code == 422
    assert browser.post(url, data={"obsolete": "1"}).status_code == 403  # no CSRF token

"""The dashboard over plain HTTP (no browser): pages, forms, CSRF, login, escaping.

Runs against the test orchestrator (`ServerThread`, no scheduler), so submitted items
stay queued and every page can be checked in a known state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ai_factory.core.models import LimitReport, LimitStatus
from ai_factory.dashboard.formatting import clock_time
from ai_factory.orchestrator.api.session import SESSION_COOKIE
from tests.support.server import ServerThread
from tests.support.settings import make_settings

TOKEN = "dashboard-t0ken"
SPEC = "# Greeting\n\n- [ ] Create `hello.txt` containing `hello`\n- [x] Already done\n"
XSS_SPEC = (
    "# <script>alert('title')</script> Escape check\n\n"
    "- [ ] Create `x.txt` containing `<img src=x onerror=alert(1)>`\n"
    "<script>alert('body')</script>\n"
)


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def open_dashboard(api: ServerThread) -> Iterator[httpx.Client]:
    """A browser-like client of a factory without an API token."""
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


@pytest.fixture
def secured(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(tmp_path, database_url=database_url, factory_api_token=TOKEN)
    server = ServerThread(settings).start()
    yield server
    server.stop()


def test_every_page_renders_with_empty_states(open_dashboard: httpx.Client) -> None:
    for path in ("/", "/workers", "/queue", "/queue/new", "/learnings", "/stats"):
        page = open_dashboard.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "No work yet — label an issue <code>ai-factory</code>" in open_dashboard.get("/").text
    assert "No work yet" in open_dashboard.get("/queue").text
    assert "No learnings yet" in open_dashboard.get("/learnings").text
    assert open_dashboard.get("/work/not-an-id").status_code == 404
    assert open_dashboard.get("/static/dashboard.js").status_code == 200
    # The Prometheus endpoint keeps its path; the metrics page is /stats.
    assert open_dashboard.get("/metrics").headers["content-type"].startswith("text/plain")


def test_open_dashboard_still_needs_its_csrf_token(open_dashboard: httpx.Client) -> None:
    form = {"repo": "https://git.example/srv/repo.git", "spec": SPEC, "priority": "high", "base_branch": "main"}
    assert open_dashboard.post("/work", data=form).status_code == 403
    page = open_dashboard.get("/queue/new")
    assert SESSION_COOKIE in page.cookies
    made = open_dashboard.post("/work", data={**form, "csrf": csrf_of(page.text)})
    assert made.status_code == 303
    item_url = made.headers["location"]
    item = open_dashboard.get(item_url)
    assert "Greeting" in item.text and 'class="badge status-queued"' in item.text
    assert item.text.count('type="checkbox" disabled') == 2
    assert item.text.count("disabled checked") == 1
    queue = open_dashboard.get("/queue", params={"status": "queued", "priority": "high"})
    assert item_url in queue.text
    assert item_url not in open_dashboard.get("/queue", params={"priority": "low"}).text


def test_item_actions_change_priority_cancel_and_retry(open_dashboard: httpx.Client) -> None:
    csrf = csrf_of(open_dashboard.get("/queue/new").text)
    url = open_dashboard.post(
        "/work", data={"repo": "https://git.example/srv/repo.git", "spec": SPEC, "priority": "low", "csrf": csrf}
    ).headers["location"]
    moved = open_dashboard.post(f"{url}/priority", data={"priority": "critical", "csrf": csrf})
    assert moved.status_code == 303
    assert 'class="badge priority-critical"' in open_dashboard.get(url).text
    assert open_dashboard.post(f"{url}/cancel", data={"csrf": csrf}).status_code == 303
    page = open_dashboard.get(url).text
    assert "status-cancelled" in page and 'id="retry"' in page
    refused = open_dashboard.post(f"{url}/priority", data={"priority": "high", "csrf": csrf})
    assert refused.status_code == 409 and "cannot reprioritise" in refused.text
    assert open_dashboard.post(f"{url}/retry", data={"csrf": csrf}).status_code == 303
    assert "status-queued" in open_dashboard.get(url).text


def test_invalid_submission_is_shown_with_the_entered_text(open_dashboard: httpx.Client) -> None:
    csrf = csrf_of(open_dashboard.get("/queue/new").text)
    page = open_dashboard.post(
        "/work", data={"repo": "-oops", "spec": "keep me", "base_branch": "main", "csrf": csrf}
    )
    assert page.status_code == 422
    assert "must not start with" in page.text and "keep me</textarea>" in page.text


def test_user_text_is_escaped_everywhere(api: ServerThread, open_dashboard: httpx.Client) -> None:
    item = httpx.post(
        f"{api.url}/api/work", json={"repo": "https://git.example/srv/<b>repo</b>.git", "spec": XSS_SPEC}
    ).json()
    httpx.post(
        f"{api.url}/api/learnings", json={"repo": "https://git.example/srv/x.git", "content": "<script>alert(3)</script>"}
    )
    for path in (f"/work/{item['id']}", "/queue", "/", "/learnings"):
        html = open_dashboard.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>repo" not in html, (
            path
        )
    html = open_dashboard.get(f"/work/{item['id']}").text
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; Escape check" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_paused_limiter_is_explained_on_the_overview(
    api: ServerThread, open_dashboard: httpx.Client
) -> None:
    services = api.services
    assert services is not None
    resets = datetime.now(UTC) + timedelta(hours=2)
    api.call(
        services.rate_limiter.record_limit(
            LimitReport(status=LimitStatus.REJECTED, resets_at=resets, rate_limit_type="five_hour")
        )
    )
    # After 22:00 the reset falls on the next day, which the page names ("Thu 00:12"); the
    # page may be drawn on either side of midnight.
    before = clock_time(resets, services.clock.tz)
    html = open_dashboard.get("/").text
    after = clock_time(resets, services.clock.tz)
    assert any(f"Paused until {local} because of the 5-hour window" in html for local in {before, after})


def test_with_a_token_pages_ask_for_it_and_the_cookie_is_not_the_token(
    secured: ServerThread,
) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as client:
        first = client.get("/queue?status=queued")
        assert (
            first.status_code == 303
            and first.headers["location"] == "/login?next=/queue%3Fstatus%3Dqueued"
        )
        assert client.get("/live/events").status_code == 401
        assert client.post("/login", data={"token": "wrong", "next": "/queue"}).status_code == 401
        signed_in = client.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        session = client.cookies[SESSION_COOKIE]
        assert TOKEN not in session
        page = client.get("/queue/new")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        # The cookie reads the API, but changes nothing there without the CSRF header.
        assert client.get("/api/status").status_code == 200
        body = {"repo": "https://git.example/srv/r.git", "spec": SPEC}
        assert client.post("/api/work", json=body).status_code == 401
        assert (
            client.post("/api/work", json=body, headers={"X-CSRF-Token": "forged"}).status_code
            == 401
        )
        assert (
            client.post("/api/work", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
        )
        # A form post without the token is refused, with or without the cookie.
        assert client.post("/work", data={"repo": "https://git.example/srv/r.git", "spec": SPEC}).status_code == 403
        assert (
            httpx.post(
                f"{secured.url}/work", data={"repo": "https://git.example/srv/r.git", "spec": SPEC, "csrf": csrf}
            ).status_code
            == 403
        )
        # A forged cookie is no session.
        forged = httpx.get(f"{secured.url}/", cookies={SESSION_COOKIE: TOKEN})
        assert forged.status_code == 303
        # The Bearer token works as before.
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(f"{secured.url}/api/work", json=body, headers=bearer).status_code in (
            200,
            201,
        )


def test_a_worker_is_shown_silent_before_the_orchestrator_gives_it_up(
    tmp_path: Path, database_url: str
) -> None:
    # Three missed heartbeats (180 s) would come after the 100 s timeout: the timeout rules.
    settings = make_settings(
        tmp_path, database_url=database_url, heartbeat_interval_seconds=60, heartbeat_timeout_seconds=100
    )
    server = ServerThread(settings).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            item = client.post("/api/work", json={"repo": "https://git.example/srv/app.git", "spec": SPEC}).json()
            reg = client.post("/api/worker/register", json={"workItemId": item["id"]}).json()
            assert 'class="fresh"' in client.get("/workers").text
            services = server.services
            assert services is not None
            server.call(
                services.db.execute(
                    "UPDATE workers SET last_heartbeat = now() - interval '110 seconds'"
                    " WHERE id = %(id)s",
                    {"id": reg["workerId"]},
                )
            )
            page = client.get("/workers").text
            assert 'class="silent"' in page and 'class="fresh"' not in page
    finally:
        server.stop()


def test_a_running_items_header_counts_its_running_attempt(open_dashboard: httpx.Client) -> None:
    """The item's own totals are written when an attempt ends; the header must not say
    0 iterations and 0 tokens while its attempt is at iteration 1 with 22k tokens."""
    item = open_dashboard.post("/api/work", json={"repo": "https://git.example/srv/app.git", "spec": SPEC}).json()
    reg = open_dashboard.post("/api/worker/register", json={"workItemId": item["id"]}).json()
    beat = open_dashboard.post(
        f"/api/worker/{reg['workerId']}/heartbeat",
        json={"iteration": 1, "tokens": 22_000, "phase": "running", "costUsd": 0.25},
        headers={"Authorization": f"Bearer {reg['token']}"},
    )
    assert beat.status_code == 200, beat.text
    page = open_dashboard.get(f"/work/{item['id']}").text
    assert 'id="item-iterations">1<' in page and 'id="item-tokens">22k<' in page
    assert "1 iterations, 22k tokens" in page  # the attempt says the same


def test_an_item_page_and_factory_show_give_the_chain_of_its_pull_request(
    api: ServerThread, open_dashboard: httpx.Client, tmp_path: Path
) -> None:
    """issue → item → pull request → follow-ups, from the root and from a follow-up."""
    from tests.support.cli import factory

    repo = "https://git.example/acme/widgets.git"
    root = open_dashboard.post("/api/work", json={"repo": repo, "spec": SPEC, "source": "github",
                                                  "sourceId": "42"}).json()  # fmt: skip
    reg = open_dashboard.post("/api/worker/register", json={"workItemId": root["id"]}).json()
    pull = "https://github.test/acme/widgets/pull/7"
    assert open_dashboard.post(
        f"/api/worker/{reg['workerId']}/complete", json={"prUrl": pull, "iterations": 1, "tokens": 1},
        headers={"Authorization": f"Bearer {reg['token']}"},
    ).status_code == 200  # fmt: skip
    follow = open_dashboard.post("/api/work", json={
        "repo": repo, "spec": "- [ ] Address the review comment", "source": "github",
        "sourceId": "pr-7", "kind": "review", "parentId": root["id"],
        "branch": f"factory/{root['id'][:8]}", "prNumber": 7, "context": {"prUrl": pull},
    }).json()  # fmt: skip

    page = open_dashboard.get(f"/work/{root['id']}").text
    chain = re.search(r'<p class="chain" id="item-chain">(.*?)</p>', page, re.S)
    assert chain and f"/work/{follow['id']}" in chain.group(1) and "review (queued)" in chain.group(1)
    page = open_dashboard.get(f"/work/{follow['id']}").text
    chain = re.search(r'<p class="chain" id="item-chain">(.*?)</p>', page, re.S)
    assert chain and f"/work/{root['id']}" in chain.group(1) and pull in chain.group(1)

    shown = factory("show", follow["id"][:8], env={"ORCHESTRATOR_URL": api.url,
                                                   "FACTORY_HOME": str(tmp_path / "cli")})  # fmt: skip
    line = next(ln for ln in shown.stdout.splitlines() if ln.startswith("chain"))
    assert line == f"chain      {root['id'][:8]} (completed) → {pull} → *{follow['id'][:8]} review (queued)"

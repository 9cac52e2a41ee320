"""The dashboard in real Chromium against a real factory: a real worker, the real `claude`
binary, the scripted model. One factory serves every test of this module, in order.

Screenshots of each page go to docs/screenshots/ (laptop width, and one at phone width).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from ai_factory.sim import Scenario, ScenarioName
from tests.support.browser import CHROMIUM, PHONE, screenshot
from tests.support.factory_up import Factory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

DONE_WITHIN_MS = 240_000

GREETING_SPEC = """# Add a greeting

Submitted from the dashboard's form.

## Tasks

- [ ] Create `hello.txt` containing `hello`
- [ ] Append `goodbye` to `hello.txt`
- [ ] Create `docs/notes.md` containing `# Notes`
- [ ] Learn `the widgets repository keeps its notes in docs/notes.md`
"""

SLOW_SPEC = """# Slow work to kill

- [ ] Create `slow.txt` containing `slow`
- [ ] Append `slower` to `slow.txt`
"""

XSS_SPEC = """# <script>window.__xss = 1</script> Escape check

<img src=x onerror="window.__xss = 2">

- [ ] Create `x.txt` containing `<b>bold</b>`
"""


def checked_boxes(page: Any) -> int:
    return page.locator("#spec-body input[type=checkbox]:checked").count()


def test_without_the_token_the_dashboard_asks_for_it_and_refuses_forged_posts(
    browser: Any, factory: Factory, signed_in: dict[str, Any]
) -> None:
    item = factory.submit(
        "# Not to be cancelled\n\n- [ ] Create `a.txt` containing `a`\n", priority="low"
    )
    stranger = browser.new_context(base_url=factory.url)
    page = stranger.new_page()
    page.goto("/queue")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.url.endswith("/login?next=/queue")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("not the factory's API token")
    stranger.close()

    # A signed-in user visits another site, which posts a form to the factory.
    victim = browser.new_context(base_url=factory.url, storage_state=signed_in)
    page = victim.new_page()
    page.goto("/")
    page.set_content(
        f'<form method="post" action="{factory.url}/work/{item["id"]}/cancel">'
        '<input name="csrf" value="guess"></form>'
    )
    with page.expect_navigation():
        page.evaluate("document.forms[0].submit()")
    expect(page.locator("h1")).to_have_text("Refused")
    # The session cookie alone does not let a script change anything through the API.
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", credentials: "include"})).status""",
        f"{factory.url}/api/work/{item['id']}/cancel",
    )
    assert status in (401, 403)
    victim.close()
    assert factory.api("GET", f"/api/work/{item['id']}")["status"] != "cancelled"
    factory.api("POST", f"/api/work/{item['id']}/cancel")  # tidy: free the worker slot


def test_a_spec_submitted_from_the_form_runs_live_to_its_result(
    page: Any, factory: Factory
) -> None:
    page.goto("/queue")
    page.click("#new-work")
    page.fill("input[name=repo]", str(factory.repo))
    page.select_option("select[name=priority]", "high")
    page.fill("textarea[name=spec]", GREETING_SPEC)
    page.click("#submit-form button[type=submit]")
    page.wait_for_url("**/work/*")
    expect(page.locator("h1.item-title")).to_have_text("Add a greeting")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#spec-body input[type=checkbox]")).to_have_count(4)

    # Status and boxes change while we watch, without a reload.
    expect(page.locator("#item-status")).to_have_text("running", timeout=DONE_WITHIN_MS)
    page.wait_for_function(
        """() => document.querySelectorAll('#spec-body input:checked').length >= 1
                 && document.querySelector('#item-status').innerText.trim() === 'running'""",
        timeout=DONE_WITHIN_MS,
    )
    assert 1 <= checked_boxes(page) < 4
    screenshot(page, "item-running")
    overview = page.context.new_page()  # a second tab: this one must not reload
    overview.goto("/")
    expect(overview.locator("#overview-workers tbody tr").first).to_be_visible()
    screenshot(overview, "overview")
    overview.close()
    expect(page.locator("#item-status")).to_have_text("completed", timeout=DONE_WITHIN_MS)
    expect(page.locator("#result")).to_be_visible()
    assert "factory/" in page.locator("#result").inner_text()
    assert checked_boxes(page) == 4
    expect(page.locator("#spec-progress")).to_have_text("4/4 tasks done")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "item")

    page.goto("/queue")
    expect(page.locator("#queue-items")).to_contain_text("Add a greeting")
    screenshot(page, "queue")


def test_worker_page_tails_the_log_live_and_kill_stops_the_worker(
    page: Any, factory: Factory
) -> None:
    factory.sim.set_scenario(Scenario(name=ScenarioName.SLOW, delay_s=3))
    try:
        item = factory.submit(SLOW_SPEC)
        worker_id = factory.wait_for(
            "a worker for the slow item",
            lambda: factory.api("GET", f"/api/work/{item['id']}").get("workerId"),
        )
        page.goto("/workers")
        expect(page.locator(f"tr[data-worker='{worker_id}']")).to_be_visible()
        screenshot(page, "workers")

        page.goto(f"/workers/{worker_id}")
        lines = page.locator("#log .line")
        expect(lines.first).to_be_visible(timeout=60_000)
        before = lines.count()
        # New lines arrive over the stream while the page stays put.
        page.wait_for_function(
            f"() => document.querySelectorAll('#log .line').length > {before}", timeout=90_000
        )
        expect(page.locator("#log .line.tag-iteration").first).to_be_visible(timeout=90_000)
        expect(page.locator("#log .line.tag-tool").first).to_be_visible(timeout=90_000)
        screenshot(page, "worker")

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#kill")
        expect(page.locator("#worker-status")).to_have_text("dead")
        expect(page.locator("#kill")).to_have_count(0)
        killed = factory.api("GET", f"/api/work/{item['id']}")
        assert killed["status"] == "failed" and "killed from the dashboard" in killed["error"]
        worker = factory.api("GET", f"/api/workers/{worker_id}")
        assert worker["status"] == "dead"
    finally:
        factory.sim.set_scenario(Scenario())

    # The failed item can be retried and cancelled from its page.
    page.goto(f"/work/{item['id']}")
    expect(page.locator("#item-error")).to_contain_text("killed from the dashboard")
    page.click("#retry")
    expect(page.locator("#cancel")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    expect(page.locator("#item-status")).to_have_text("cancelled")


def test_learnings_search_shows_what_the_api_finds(page: Any, factory: Factory) -> None:
    for text in (
        "Run the widgets tests with python3 -m unittest",
        "The docs folder holds markdown notes only",
        "Releases are tagged from main",
    ):
        factory.api("POST", "/api/learnings", json={"repo": str(factory.repo), "content": text})
    query = "notes docs"
    page.goto("/learnings")
    page.fill("input[name=q]", query)
    page.click("#learning-search button[type=submit]")
    page.wait_for_url("**/learnings?*")
    shown = page.locator("li.learning").evaluate_all("els => els.map(e => e.dataset.learning)")
    found = factory.api("GET", "/api/learnings", params={"search": query})
    assert shown == [learning["id"] for learning in found]
    assert len(shown) >= 2  # the worker's learning and the one added above
    expect(page.locator("li.learning").first).to_contain_text("notes")
    screenshot(page, "learnings")

    doomed = found[-1]["id"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"li[data-learning='{doomed}'] button")
    expect(page.locator(f"li[data-learning='{doomed}']")).to_have_count(0)
    assert doomed not in [x["id"] for x in factory.api("GET", "/api/learnings")]


def test_metrics_page_draws_its_charts(page: Any, factory: Factory) -> None:
    page.goto("/stats")
    per_day = page.locator("figure[data-chart='1'] svg.chart")
    expect(per_day).to_be_visible()
    values = per_day.locator(".point").evaluate_all("els => els.map(e => Number(e.dataset.value))")
    assert sum(values) >= 1  # the completed greeting (and the killed item) today
    iterations = page.locator("figure[data-chart='3'] svg.chart .point")
    assert iterations.count() >= 1
    assert max(iterations.evaluate_all("els => els.map(e => Number(e.dataset.value))")) >= 4
    expect(page.locator("#metrics-items")).to_contain_text("Add a greeting")
    screenshot(page, "metrics")


def test_a_spec_with_script_tags_is_shown_as_text(page: Any, factory: Factory) -> None:
    item = factory.submit(XSS_SPEC)
    for path in (f"/work/{item['id']}", "/queue", "/"):
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__xss") == "undefined", path
    page.goto(f"/work/{item['id']}")
    expect(page.locator("h1.item-title")).to_have_text(
        "<script>window.__xss = 1</script> Escape check"
    )
    expect(page.locator("#spec-body")).to_contain_text('<img src=x onerror="window.__xss = 2">')
    assert page.locator("#spec-body img, #spec-body script, #spec-body b").count() == 0


def test_overview_sums_up_the_factory_on_a_laptop_and_a_phone(
    browser: Any, page: Any, factory: Factory, signed_in: dict[str, Any]
) -> None:
    page.goto("/")
    expect(page.locator("#count-completed")).not_to_have_text("0")
    expect(page.locator("#limiter")).to_be_visible()
    expect(page.locator("#overview-events li.event").first).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "on")

    phone = browser.new_context(base_url=factory.url, viewport=PHONE, storage_state=signed_in)
    tab = phone.new_page()
    tab.goto("/")
    expect(tab.locator("#limiter")).to_be_visible()
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the overview scrolls sideways on a phone ({width}px)"
    screenshot(tab, "overview-phone")
    phone.close()


def test_live_stream_requires_a_session(factory: Factory) -> None:
    assert httpx.get(f"{factory.url}/live/events", timeout=10).status_code == 401

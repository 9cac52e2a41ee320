"""The dashboard's pure parts, without a server: sessions, markdown, charts, spec progress,
log tags and the limiter's wording. (No I/O beyond a temporary SPEC.md.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from ai_factory.core.models import WorkItem, WorkItemEvent
from ai_factory.dashboard.charts import Chart, Series, nice_max
from ai_factory.dashboard.formatting import clock_time, describe_limits
from ai_factory.dashboard.logview import classify
from ai_factory.dashboard.markdown import MarkdownRenderer
from ai_factory.dashboard.progress import SpecSource, spec_progress
from ai_factory.orchestrator.api.session import SessionCodec
from ai_factory.orchestrator.spawn_limits import RateLimitStatus, UsageWindow

SPEC = "# T\n\n- [ ] one\n- [ ] two\n\n## Optional\n\n- [ ] maybe\n"


def item(status: str, spec: str = SPEC) -> WorkItem:
    now = datetime.now(UTC)
    return WorkItem(
        id=uuid4(), source="api", source_id="x", source_url="", repo="/r", base_branch="main",
        spec=spec, priority="medium", status=status, created_at=now, updated_at=now,
    )  # fmt: skip


def iteration_event(item_id, **data) -> WorkItemEvent:
    return WorkItemEvent(
        id=1, work_item_id=item_id, kind="iteration", data=data, created_at=datetime.now(UTC)
    )


def test_sessions_are_signed_expire_and_follow_the_token() -> None:
    codec = SessionCodec.for_token("secret-token")
    cookie, session = codec.issue()
    assert "secret-token" not in cookie
    assert codec.read(cookie) == session
    assert session.csrf_matches(session.csrf_token) and not session.csrf_matches("nope")
    assert not session.csrf_matches(None)
    assert SessionCodec.for_token("other-token").read(cookie) is None
    assert codec.read(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None
    assert codec.read("secret-token") is None and codec.read(None) is None
    old, _ = codec.issue(now=datetime.now(UTC).timestamp() - codec.max_age_s - 10)
    assert codec.read(old) is None
    # A restart with the same token keeps sessions; an open dashboard's do not survive.
    assert SessionCodec.for_token("secret-token").read(cookie) == session
    assert SessionCodec.ephemeral().read(SessionCodec.ephemeral().issue()[0]) is None


def test_markdown_escapes_html_and_draws_task_boxes() -> None:
    html = MarkdownRenderer().render(
        "# <script>x()</script>\n\n- [x] done\n- [ ] open <img src=x onerror=y()>\n\n"
        "[link](javascript:alert(1))\n"
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and 'href="javascript' not in html
    assert html.count('type="checkbox" disabled checked') == 1
    assert html.count('type="checkbox" disabled>') == 1


def test_charts_escape_labels_and_mark_every_point() -> None:
    chart = Chart("<b>t</b>", ["<a>", "b", "c"], [Series("s", [1, None, 3])])
    svg = chart.svg()
    assert "<b>" not in svg and "&lt;a&gt;" in svg
    assert svg.count('class="point bar') == 2
    line = Chart("rate", ["a", "b"], [Series("r", [0.0, None])], kind="line", y_max=100)
    assert not line.empty and line.svg().count("<circle") == 1
    assert Chart("empty", ["a"], [Series("s", [0])]).empty
    assert [nice_max(v) for v in (0, 0.3, 7, 26, 101)] == [1.0, 0.5, 10, 50, 200]


def test_spec_progress_prefers_the_worktree_then_reports_then_the_end(tmp_path: Path) -> None:
    running = item("running")
    tree = tmp_path / "worktrees" / str(running.id)
    tree.mkdir(parents=True)
    (tree / "SPEC.md").write_text(SPEC.replace("- [ ] one", "- [x] one"))
    live = spec_progress(running, [], home=tmp_path)
    assert live.source is SpecSource.WORKTREE and (live.done, live.total) == (1, 2)

    reported = item("stuck")
    events = [iteration_event(reported.id, doneTasks=["two"], tasksDone=1, tasksTotal=2)]
    shown = spec_progress(reported, events, home=tmp_path)
    assert shown.source is SpecSource.REPORT and "- [x] two" in shown.text

    counted = spec_progress(
        reported, [iteration_event(reported.id, tasksDone=1, tasksTotal=2)], home=tmp_path
    )
    assert counted.source is SpecSource.SUBMITTED and (counted.done, counted.total) == (1, 2)

    done = spec_progress(item("completed"), [], home=tmp_path)
    assert done.source is SpecSource.FINAL and (done.done, done.total) == (2, 2)
    assert "- [ ] maybe" in done.text  # optional tasks were never required


def test_reported_done_tasks_tick_tasks_only_not_code_blocks() -> None:
    spec = "# T\n\n- [ ] one\n```\n- [ ] one\n```\n1. [ ] two\n- [ ] three\n"
    shown = spec_progress(item("running", spec), [iteration_event(uuid4(), doneTasks=["one", "two"])],
                          home=Path("/nonexistent"))  # fmt: skip
    assert shown.source is SpecSource.REPORT
    assert shown.text == "# T\n\n- [x] one\n```\n- [ ] one\n```\n1. [x] two\n- [ ] three\n"
    assert (shown.done, shown.total) == (2, 3)


def test_log_lines_are_tagged_by_what_they_say() -> None:
    assert (
        classify("12:00:01 INFO ai_factory.worker.loop: iteration.started number=1") == "iteration"
    )
    assert classify("12:00:02 INFO ai_factory.worker.agent.stream: agent.tool tool=Write") == "tool"
    assert classify("12:00:03 INFO ai_factory.worker.loop: gate.failed exit=1") == "gate-fail"
    assert classify("12:00:03 INFO ai_factory.worker.loop: gate.passed") == "gate-pass"
    assert classify("12:00:04 WARNING ai_factory.worker.main: something odd") == "warn"
    assert classify("--- 2026-01-01T00:00:00+00:00 worker x attempt 1 (process) ---") == "mark"
    assert classify("<script>alert(1)</script>") == "info"


def test_clock_times_name_the_day_once_it_is_not_today() -> None:
    now = datetime(2026, 12, 2, 22, 12, tzinfo=UTC)
    assert clock_time(now + timedelta(hours=1), UTC, now=now) == "23:12"
    assert clock_time(now + timedelta(hours=2), UTC, now=now) == "Thu 00:12"
    assert clock_time(now + timedelta(days=8), UTC, now=now) == "2026-12-10 22:12"
    assert clock_time(None, UTC, now=now) == "–"


def test_limiter_says_until_when_and_why_it_is_paused() -> None:
    resets = datetime(2026, 5, 1, 16, 50, tzinfo=UTC)
    window = UsageWindow(
        window_type="five_hour",
        status="rejected",
        resets_at=resets,
        updated_at=resets - timedelta(hours=1),
    )
    status = RateLimitStatus(
        active_workers=0, max_workers=2, iterations_today=3, daily_budget=200, cooldown_seconds=0,
        paused_until=resets, pause_reason="five_hour usage limit", windows=[window], can_spawn=False,
        blocked_by=["usage_limit"],
    )  # fmt: skip
    view = describe_limits(status, UTC)
    assert view.tone == "stop" and view.headline.startswith("Paused until ")
    assert view.headline.endswith("16:50 because of the 5-hour window")
    busy = status.model_copy(
        update={
            "paused_until": None,
            "windows": [],
            "blocked_by": ["max_workers"],
            "active_workers": 2,
        }
    )
    assert describe_limits(busy, UTC).headline == "All 2 worker slots are busy"
    near = busy.model_copy(update={
        "blocked_by": [], "can_spawn": True, "active_workers": 1,
        "single_file_worker": UUID("3f1c2a9e-0000-4000-8000-000000000001"),
        "single_file_reason": "five_hour usage window close to its limit (85% used): one worker at a time",
    })  # fmt: skip
    view = describe_limits(near, UTC)
    assert view.tone == "ok" and view.details == [
        "Close to a usage limit (five_hour usage window close to its limit (85% used): one worker"
        " at a time): worker 3f1c2a9e has the turn"
    ]

"""The run-outcome decision over every usage-limit wording we know of (docs/claude-cli-notes.md),
what the scripted model makes the CLI say, and reset times in their time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ai_factory.worker.agent.result import IterationResult, RateLimitSignal, StopReason
from ai_factory.worker.run_outcome import (
    LimitAction,
    LimitPolicy,
    decide,
    parse_reset_time,
)

NOW = datetime(2026, 7, 10, 20, 0, tzinfo=UTC)  # 14:00 in Denver, 16:00 in New York
POLICY = LimitPolicy(reset_margin_s=60, fallback_wait_s=900)


def errored(text: str, status: int | None = 429, **extra: object) -> IterationResult:
    """What the SDK gives for an API failure: an error result with the CLI's text."""
    return IterationResult(got_result=True, is_error=True, result_text=text, api_error_status=status,
                           subtype="success", terminal_reason="api_error", **extra)  # fmt: skip


def decision_for(result: IterationResult, **kwargs: object):
    return decide(result, now=NOW, policy=POLICY, local_tz=UTC, **kwargs)  # type: ignore[arg-type]


# --- usage limits: wait until the reset, do not count the iteration --------------------

USAGE_LIMITS = [
    # (text, expected reset in UTC, window)
    ("You've hit your session limit • resets 4:50pm (America/Denver)",
     datetime(2026, 7, 10, 22, 50, tzinfo=UTC), "five_hour"),
    ("You've hit your session limit · resets 4pm (UTC)",
     datetime(2026, 7, 11, 16, 0, tzinfo=UTC), "five_hour"),
    ("You've hit your 5-hour limit · resets 1:19pm (UTC)",  # what the CLI says against the sim
     datetime(2026, 7, 11, 13, 19, tzinfo=UTC), "five_hour"),
    ("Claude AI usage limit reached|1783720800",
     datetime.fromtimestamp(1783720800, UTC), None),
    ("Claude usage limit reached. Your limit will reset at 1pm (Etc/GMT+5).",
     datetime(2026, 7, 11, 18, 0, tzinfo=UTC), None),
    ("5-hour limit reached ∙ resets 2am",
     datetime(2026, 7, 11, 2, 0, tzinfo=UTC), "five_hour"),
    ("You've hit your limit · resets 5pm (Europe/Vilnius)",
     datetime(2026, 7, 11, 14, 0, tzinfo=UTC), None),
    ("You've hit your limit · resets Jul 15 at 9pm (America/New_York)",  # "May 5 at 9pm" form
     datetime(2026, 7, 16, 1, 0, tzinfo=UTC), None),
    ("You're out of extra usage · resets 9pm",
     datetime(2026, 7, 10, 21, 0, tzinfo=UTC), "overage"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reset", "window"), USAGE_LIMITS, ids=[u[0][:40] for u in USAGE_LIMITS]
)
def test_usage_limit_wordings_wait_until_the_reset_they_announce(
    text: str, reset: datetime, window: str | None
) -> None:
    decision = decision_for(errored(text))

    assert decision.action is LimitAction.WAIT_FOR_RESET
    assert decision.resets_at == reset
    assert decision.resume_at == reset + timedelta(seconds=60)
    assert decision.delay_s == pytest.approx((reset - NOW).total_seconds() + 60)
    assert decision.reset_source == "text"
    assert decision.rate_limit_type == window


@pytest.mark.parametrize(
    "text",
    [
        "You've hit your individual spend limit · run /usage-credits to raise it",
        "You've hit your org's monthly usage limit",
        "You have hit your weekly limit",
    ],
)
def test_usage_limits_without_a_reset_time_wait_the_fallback(text: str) -> None:
    decision = decision_for(errored(text))

    assert decision.action is LimitAction.WAIT_FOR_RESET
    assert decision.reset_source == "fallback" and decision.resets_at is None
    assert decision.resume_at == NOW + timedelta(seconds=900)


def test_weekly_limit_is_named_seven_day() -> None:
    assert decision_for(errored("You have hit your weekly limit")).rate_limit_type == "seven_day"


def test_rejected_rate_limit_event_wins_over_the_text_and_uses_resets_at() -> None:
    resets = int((NOW + timedelta(minutes=42)).timestamp())
    result = errored(
        "You've hit your 5-hour limit · resets 1:19pm (UTC)", api_error="usage_limit_reached"
    )
    result.rate_limits = [
        RateLimitSignal(status="allowed", resets_at=resets, rate_limit_type="five_hour"),
        RateLimitSignal(status="rejected", resets_at=resets, rate_limit_type="five_hour"),
    ]

    decision = decision_for(result)

    assert decision.action is LimitAction.WAIT_FOR_RESET
    assert decision.reset_source == "event"
    assert decision.resets_at == datetime.fromtimestamp(resets, UTC)
    assert decision.rate_limit_type == "five_hour"


def test_rejected_event_seen_mid_stream_waits_even_without_a_result() -> None:
    """The driver stops the CLI as soon as it sees the rejection: no result message yet."""
    resets = int((NOW + timedelta(seconds=5)).timestamp())
    raw = {"unifiedWindows": {"seven_day": {"utilization": 1, "resetsAt": resets}}}
    result = IterationResult(stop=StopReason.LIMITED, rate_limits=[
        RateLimitSignal(status="rejected", resets_at=None, rate_limit_type="seven_day", raw=raw)])  # fmt: skip

    decision = decision_for(result)

    assert decision.action is LimitAction.WAIT_FOR_RESET
    assert decision.resets_at == datetime.fromtimestamp(resets, UTC)
    assert decision.rate_limit_type == "seven_day"


def test_a_reset_in_the_past_waits_only_the_margin_and_a_far_one_is_clamped() -> None:
    past = int((NOW - timedelta(minutes=5)).timestamp())
    far = int((NOW + timedelta(days=30)).timestamp())
    signal = RateLimitSignal(status="rejected", resets_at=past, rate_limit_type="five_hour")
    assert decision_for(IterationResult(rate_limits=[signal])).delay_s == pytest.approx(60)
    signal = RateLimitSignal(status="rejected", resets_at=far, rate_limit_type="five_hour")
    assert decision_for(IterationResult(rate_limits=[signal])).delay_s == POLICY.max_wait_s


def test_allowed_warning_alone_does_not_stop_anything() -> None:
    result = IterationResult(got_result=True, rate_limits=[
        RateLimitSignal(status="allowed_warning", utilization=0.8, rate_limit_type="five_hour")])  # fmt: skip

    assert decision_for(result).action is LimitAction.PROCEED


@pytest.mark.parametrize(
    "text",
    [
        "Your usage allocation has been disabled by your admin",
        "API Error: Usage credits required for 1M context · turn on usage credits to continue",
    ],
)
def test_limits_only_a_human_can_lift_fail(text: str) -> None:
    decision = decision_for(errored(text, status=429))

    assert decision.action is LimitAction.FAIL
    assert text[:30] in decision.reason


# --- transient: exponential backoff, then give up --------------------------------------

TRANSIENT = [
    ("Server is temporarily limiting requests (not your usage limit) · Rate limited", 429),
    (("API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a "
      "moment. If it persists, check your inference gateway (127.0.0.1:8123)."), 529),
    ("API Error: 502 Bad Gateway", 502),
    ("API Error: 503 Service Unavailable", 503),
    ("API Error: 504 Gateway Timeout", 504),
    (("Request timed out. If the API is slow to answer, or a proxy or gateway holds responses, "
      "set API_TIMEOUT_MS above 1500."), None),
    (("API Error: Request rejected (429) · This request would exceed your account's rate limit. "
      "Please try again later."), 429),  # an API key's rate limit: no subscription wording
]  # fmt: skip


@pytest.mark.parametrize(("text", "status"), TRANSIENT, ids=[t[0][:30] for t in TRANSIENT])
def test_transient_errors_back_off(text: str, status: int | None) -> None:
    decision = decision_for(errored(text, status=status, assistant_errors=["server_error"]))

    assert decision.action is LimitAction.BACKOFF
    assert decision.delay_s == POLICY.backoff_base_s


def test_a_cli_that_dies_without_a_result_is_started_again() -> None:
    result = IterationResult(process_error="Error: No messages returned")

    assert decision_for(result).action is LimitAction.BACKOFF


def test_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    result = errored("API Error: 529 Overloaded", status=529)
    delays = [decision_for(result, transient_failures=n).delay_s for n in range(8)]

    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    final = decision_for(result, transient_failures=POLICY.max_transient_failures)
    assert final.action is LimitAction.FAIL
    assert "kept failing" in final.reason and "529 Overloaded" in final.reason


# --- fatal: fail at once with what to do -----------------------------------------------


@pytest.mark.parametrize(
    "text", ["Not logged in · Please run /login", "Invalid API key · Fix external API key"]
)
def test_auth_errors_fail_with_how_to_log_in(text: str) -> None:
    decision = decision_for(errored(text, status=401, assistant_errors=["authentication_failed"]))

    assert decision.action is LimitAction.FAIL
    assert "claude setup-token" in decision.reason
    assert "CLAUDE_CODE_OAUTH_TOKEN" in decision.reason and "ANTHROPIC_API_KEY" in decision.reason
    assert text in decision.reason


def test_root_without_sandbox_fails_with_the_fix() -> None:
    result = IterationResult(
        process_error="Command failed with exit code 1 (exit code: 1)",
        output_tail="--dangerously-skip-permissions cannot be used with root/sudo privileges "
        "for security reasons",
    )

    decision = decision_for(result)

    assert decision.action is LimitAction.FAIL and "IS_SANDBOX=1" in decision.reason


def test_other_client_errors_fail() -> None:
    decision = decision_for(errored("API Error: 404 model: claude-nope not found", status=404))

    assert decision.action is LimitAction.FAIL and "HTTP 404" in decision.reason


# --- everything else counts --------------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [
        IterationResult(got_result=True, result_text="Done: Create `a.txt`."),
        IterationResult(stop=StopReason.IDLE_TIMEOUT),
        IterationResult(stop=StopReason.WALL_TIMEOUT),
        IterationResult(got_result=True, is_error=True, subtype="error_max_turns"),
        # Echoed file text mentioning a limit is not an error (frankbria #183).
        IterationResult(
            got_result=True, result_text="Documented the 5-hour limit reached message."
        ),
    ],
    ids=["normal", "idle", "wall", "max-turns", "echo"],
)
def test_runs_that_ended_otherwise_proceed(result: IterationResult) -> None:
    assert decision_for(result).action is LimitAction.PROCEED


def test_a_failed_command_whose_output_says_limit_waits() -> None:
    result = IterationResult(got_result=True, exit_code=1, process_error="ralph exited with code 1",
                             output_tail="iteration: 2\nYou've hit your limit · resets 9pm (UTC)")  # fmt: skip

    decision = decision_for(result)

    assert decision.action is LimitAction.WAIT_FOR_RESET
    assert decision.resets_at == datetime(2026, 7, 10, 21, 0, tzinfo=UTC)


# --- reset time parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "resets 4:50pm (America/Denver)",
            datetime(2026, 7, 10, 16, 50, tzinfo=ZoneInfo("America/Denver")),
        ),
        (
            "resets 1pm (America/Denver)",
            datetime(2026, 7, 11, 13, 0, tzinfo=ZoneInfo("America/Denver")),
        ),
        ("resets 12am (UTC)", datetime(2026, 7, 11, 0, 0, tzinfo=UTC)),
        ("resets 12pm (UTC)", datetime(2026, 7, 11, 12, 0, tzinfo=UTC)),
        ("resets 21:30 (UTC)", datetime(2026, 7, 10, 21, 30, tzinfo=UTC)),
        ("resets Jul 10 at 11pm (UTC)", datetime(2026, 7, 10, 23, 0, tzinfo=UTC)),
        (
            "resets Jan 2 at 9am (Asia/Tokyo)",
            datetime(2027, 1, 2, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
        ),
        (
            "resets May 5 at 9pm (America/New_York)",  # already past this year: next year's
            datetime(2027, 5, 5, 21, 0, tzinfo=ZoneInfo("America/New_York")),
        ),
        ("resets in 2h 30m", NOW + timedelta(hours=2, minutes=30)),
        ("resets 5pm (Not/AZone)", datetime(2026, 7, 11, 17, 0, tzinfo=UTC)),  # unknown zone: local
    ],
)
def test_parse_reset_time(text: str, expected: datetime) -> None:
    assert parse_reset_time(text, now=NOW, local_tz=UTC) == expected


def test_rolling_to_the_next_day_keeps_the_wall_clock_across_a_dst_change() -> None:
    # 2026-03-08 is the US spring-forward day: 9am New York is then UTC-4, not UTC-5.
    now = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # 10:00 in New York
    reset = parse_reset_time("resets 9am (America/New_York)", now=now)

    assert reset == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_local_times_use_the_local_zone() -> None:
    denver = ZoneInfo("America/Denver")
    assert parse_reset_time("resets 3pm", now=NOW, local_tz=denver) == datetime(
        2026, 7, 10, 15, 0, tzinfo=denver
    )


@pytest.mark.parametrize("text", ["no time here", "resets 5 things", "resets 13pm", "resets 25:00"])
def test_parse_reset_time_finds_nothing(text: str) -> None:
    assert parse_reset_time(text, now=NOW, local_tz=UTC) is None

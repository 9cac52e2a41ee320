"""How the dashboard words numbers, times and limiter state (Jinja filters and helpers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from ai_factory.orchestrator.spawn_limits import RateLimitStatus

WINDOW_NAMES = {
    "five_hour": "5-hour window",
    "seven_day": "weekly window",
    "seven_day_opus": "weekly Opus window",
    "seven_day_sonnet": "weekly Sonnet window",
}


def age(seconds: float | None) -> str:
    """``12s``, ``4m 05s``, ``3h 10m``, ``2d 4h`` ago-style durations."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def tokens(value: float | None) -> str:
    v = int(value or 0)
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:,}"


def usd(value: float | None) -> str:
    v = float(value or 0)
    return f"${v:,.2f}" if v >= 0.995 or v == 0 else f"${v:.3f}"


def clock_time(value: datetime | None, tz: tzinfo, *, now: datetime | None = None) -> str:
    """``16:50`` today, ``Tue 16:50`` within a week, else ``2026-05-01 16:50``."""
    if value is None:
        return "–"
    local = value.astimezone(tz)
    today = (now or datetime.now(tz)).astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if abs((local.date() - today.date()).days) < 7:
        return local.strftime("%a %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def window_name(window_type: str) -> str:
    return WINDOW_NAMES.get(window_type, window_type.replace("_", " ") + " window")


@dataclass(slots=True)
class LimiterView:
    """The limiter's state in words: a headline, a tone (ok, wait, stop) and details."""

    tone: str
    headline: str
    details: list[str] = field(default_factory=list)


def describe_limits(status: RateLimitStatus, tz: tzinfo) -> LimiterView:
    details: list[str] = []
    if status.paused_until is not None:
        rejected = [w for w in status.windows if w.status == "rejected"]
        why = ", ".join(window_name(w.window_type) for w in rejected) or (
            status.pause_reason or "a usage limit"
        )
        headline = f"Paused until {clock_time(status.paused_until, tz)} because of the {why}"
        return LimiterView("stop", headline, _reasons(status, tz, skip="usage_limit"))
    details = _reasons(status, tz)
    if status.single_file_worker is not None:
        details.append(f"Close to a usage limit ({status.single_file_reason}): worker"
                       f" {str(status.single_file_worker)[:8]} has the turn")  # fmt: skip
    if status.can_spawn:
        return LimiterView("ok", "Ready: a worker can start when work is queued", details)
    tone = (
        "stop"
        if {"daily_budget", "daily_cost_budget", "monthly_cost_budget"} & set(status.blocked_by)
        else "wait"
    )
    return LimiterView(tone, details[0] if details else "Waiting", details[1:])


def _reasons(status: RateLimitStatus, tz: tzinfo, *, skip: str = "") -> list[str]:
    words = {
        "max_workers": f"All {status.max_workers} worker slots are busy"
        if status.max_workers
        else "MAX_WORKERS is 0: work is accepted but no worker starts",
        "daily_budget": f"The daily budget of {status.daily_budget} iterations is used up (resets at midnight)",
        "cooldown": f"Cooling down: the next worker may start in {age(status.cooldown_remaining)}",
        "daily_cost_budget": f"Today's cost budget of {usd(status.daily_cost_budget_usd)} is used up",
        "monthly_cost_budget": f"This month's cost budget of {usd(status.monthly_cost_budget_usd)} is used up",
        "usage_limit": f"Paused by a usage limit until {clock_time(status.paused_until, tz)}",
    }
    return [words.get(reason, reason) for reason in status.blocked_by if reason != skip]


def percent(part: float, whole: float) -> int:
    if not whole:
        return 0
    return max(0, min(100, round(100 * part / whole)))

"""Whether to go on, wait for a usage limit, back off, or give up after an agent run.

Owns: `decide`, the one function that turns an `IterationResult` into a
`LimitAction` (and when to resume), the wordings it recognises,
`parse_reset_time` for the human reset times Claude Code prints, and the
``limited`` reports the orchestrator's rate limiter reads.

Signals, strongest first (docs/claude-cli-notes.md, with the wordings seen elsewhere):

1. a ``rate_limit_event`` with status ``rejected`` (OAuth logins only): wait
   until its ``resetsAt`` (epoch seconds); the factory's own pause (another
   worker's rejected limit, learnt between two requests) is the same, from
   ``source`` ``factory``;
2. the result text: transient throttles ("Server is temporarily limiting
   requests (not your usage limit)", 529, 5xx, timeouts) back off; usage-limit
   wordings ("You've hit your session limit · resets 4:50pm (America/Denver)",
   "Claude AI usage limit reached|1749924000", ...) wait until the time in the
   text, or a fallback; auth errors fail at once with how to log in;
3. anything else that ended the run (max turns, a timeout, a silent exit)
   proceeds: the iteration counts and the loop judges its progress.

Precedence is retry → limit → error, so "not your usage limit" never sleeps
for hours, and a wording we do not know never fails a run by itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ai_factory.core.models import LimitReport, LimitStatus
from ai_factory.worker.agent.result import IterationResult, RateLimitSignal

LOGIN_HELP = (
    "Claude Code is not logged in (or its credentials were rejected). On the worker's machine "
    "run `factory login` (the bundled `claude setup-token`) and set CLAUDE_CODE_OAUTH_TOKEN "
    "to the token it prints "
    "(a Claude subscription), or set ANTHROPIC_API_KEY (API billing); then retry the item."
)
ROOT_HELP = (
    "Claude Code refuses to skip permission prompts as root. Leave FACTORY_AGENT_USER set "
    "(a worker running as root then runs Claude Code as that user), or run the worker as a "
    "normal user; inside a throwaway sandbox (container, VM) IS_SANDBOX=1 lets it run as root."
)


class LimitAction(StrEnum):
    PROCEED = "proceed"  # the run counts: judge its progress
    WAIT_FOR_RESET = "wait_for_reset"  # usage limit: sleep until resume_at, retry uncounted
    BACKOFF = "backoff"  # transient API trouble: sleep delay_s, retry uncounted
    FAIL = "fail"  # nothing will change by retrying: stop and report


@dataclass(frozen=True)
class LimitPolicy:
    """How long to wait. Tests shrink these; production keeps the defaults."""

    reset_margin_s: float = 60.0  # after the announced reset, before retrying
    fallback_wait_s: float = 15 * 60.0  # a usage limit without a reset time: re-probe then
    max_wait_s: float = 8 * 24 * 3600.0  # a reset further away than this is clamped
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 300.0
    max_transient_failures: int = 10  # consecutive; about half an hour with the defaults


@dataclass(frozen=True)
class LimitDecision:
    action: LimitAction
    reason: str
    resume_at: datetime | None = None  # WAIT_FOR_RESET: when to retry
    resets_at: datetime | None = None  # WAIT_FOR_RESET: the reset time as announced
    delay_s: float = 0.0  # BACKOFF / WAIT_FOR_RESET: seconds from now
    rate_limit_type: str | None = None
    reset_source: str | None = None  # event | text | fallback | factory


# --- wordings (case-insensitive); docs/claude-cli-notes.md says where each was seen ---

_TRANSIENT_TEXT = re.compile(
    r"temporarily limiting requests|not your usage limit|overloaded|"
    r"api error: (?:5\d\d|408)|\b5\d\d\b.*(?:server|gateway|unavailable)|"
    r"request timed out|no messages returned|connection error|econnreset|etimedout|"
    r"socket hang up|fetch failed|network error",
    re.IGNORECASE,
)
_USAGE_LIMIT_TEXT = re.compile(
    r"usage limit reached|hit your (?:[\w'\- ]{0,40})?limit|\d+-hour limit reached|"
    r"out of extra usage|weekly limit|session limit|usage limit will reset|"
    r"limit will reset at|spend limit|monthly usage limit",
    re.IGNORECASE,
)
# Limits a human has to lift: waiting does not help.
_BLOCKED_TEXT = re.compile(
    r"usage allocation has been disabled|usage credits required|turn on usage credits|"
    r"credit balance is too low",
    re.IGNORECASE,
)
_AUTH_TEXT = re.compile(
    r"not logged in|please run /login|invalid api key|invalid x-api-key|"
    r"oauth token (?:has )?(?:expired|revoked)|authentication_error|authentication failed|"
    r"invalid bearer token|could not resolve authentication",
    re.IGNORECASE,
)
_ROOT_TEXT = re.compile(r"cannot be used with root/sudo privileges", re.IGNORECASE)
_NESTED_TEXT = re.compile(r"cannot be launched inside another claude code session", re.IGNORECASE)

_TRANSIENT_ERRORS = frozenset({"server_error", "unknown", "overloaded"})
_TRANSIENT_STATUS = frozenset({408, 425, 500, 502, 503, 504, 520, 522, 524, 529})


def decide(
    result: IterationResult,
    *,
    now: datetime,
    transient_failures: int = 0,
    policy: LimitPolicy | None = None,
    local_tz: tzinfo | None = None,
) -> LimitDecision:
    """What to do after `result`. `transient_failures`: consecutive BACKOFFs before it."""
    policy = policy or LimitPolicy()
    rejected = result.rejected
    if rejected is not None and rejected.waiting_turn:  # no refusal: wait for the turn now
        return LimitDecision(
            LimitAction.WAIT_FOR_RESET,
            str(rejected.raw.get("reason") or "a usage window is close to its limit")
            + ": another worker's turn",
            resume_at=now, rate_limit_type=rejected.rate_limit_type, reset_source="factory",
        )  # fmt: skip
    if rejected is not None:
        decision = _wait(result, policy, now, local_tz, event_reset=rejected.window_resets_at,
                         rate_limit_type=rejected.rate_limit_type)  # fmt: skip
        if rejected.from_factory:  # another worker's limit: the factory as a whole waits
            kind = rejected.rate_limit_type or "unknown window"
            return replace(decision, reset_source="factory",
                           reason=f"usage limit ({kind}): the factory is paused until its reset")
        return decision
    if not result.failed:
        return LimitDecision(LimitAction.PROCEED, "the run ended normally")

    text = _error_text(result)
    status = result.api_error_status
    if _ROOT_TEXT.search(text):
        return LimitDecision(LimitAction.FAIL, ROOT_HELP)
    if _NESTED_TEXT.search(text):
        return LimitDecision(
            LimitAction.FAIL, "Claude Code refused to start inside another Claude Code session."
        )
    if (status == 401 or "authentication_failed" in result.assistant_errors
            or _AUTH_TEXT.search(text)):  # fmt: skip
        detail = _first_line(text)
        return LimitDecision(LimitAction.FAIL, f"{LOGIN_HELP} (Claude Code said: {detail})")
    usage_limit = _explicit_usage_limit(result, text)
    if _TRANSIENT_TEXT.search(text) and not usage_limit:
        return _backoff(policy, transient_failures, _first_line(text))
    if _BLOCKED_TEXT.search(text):
        return LimitDecision(
            LimitAction.FAIL,
            f"Claude usage is blocked until someone changes the account: {_first_line(text)}",
        )
    if usage_limit:
        return _wait(result, policy, now, local_tz, event_reset=None, rate_limit_type=None)
    if status == 429 or "rate_limit" in result.assistant_errors:
        # An API key's per-minute rate limit (no subscription wording): short backoff.
        return _backoff(policy, transient_failures, _first_line(text))
    if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
        return _backoff(policy, transient_failures, _first_line(text))
    if status is not None and 400 <= status < 500:
        return LimitDecision(
            LimitAction.FAIL,
            f"the Claude API refused the request (HTTP {status}): {_first_line(text)}",
        )
    if set(result.assistant_errors) & _TRANSIENT_ERRORS:
        return _backoff(policy, transient_failures, _first_line(text))
    if result.process_error is not None and not result.got_result:
        # The CLI died without a result ("No messages returned", a crash): start it again.
        return _backoff(policy, transient_failures, _first_line(text) or "the agent process died")
    return LimitDecision(LimitAction.PROCEED, f"the run ended with an error: {_first_line(text)}")


def _explicit_usage_limit(result: IterationResult, text: str) -> bool:
    if result.api_error == "usage_limit_reached":
        return True
    return bool(_USAGE_LIMIT_TEXT.search(text)) and "not your usage limit" not in text.lower()


def _error_text(result: IterationResult) -> str:
    parts = [
        result.result_text if result.is_error else None,
        result.process_error,
        result.output_tail if (result.process_error or result.exit_code) else None,
    ]
    return "\n".join(p for p in parts if p)


def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:limit]


def _backoff(policy: LimitPolicy, failures: int, detail: str) -> LimitDecision:
    if failures >= policy.max_transient_failures:
        return LimitDecision(
            LimitAction.FAIL,
            f"the Claude API kept failing ({failures} retries in a row); last error: {detail}",
        )
    delay = min(policy.backoff_cap_s, policy.backoff_base_s * 2**failures)
    return LimitDecision(
        LimitAction.BACKOFF,
        f"transient API error, retrying in {delay:.0f} s: {detail}",
        delay_s=delay,
    )


def _wait(
    result: IterationResult,
    policy: LimitPolicy,
    now: datetime,
    local_tz: tzinfo | None,
    *,
    event_reset: int | None,
    rate_limit_type: str | None,
) -> LimitDecision:
    text = result.result_text or result.output_tail or result.process_error or ""
    resets_at: datetime | None = None
    source = "fallback"
    if event_reset is not None:
        resets_at, source = datetime.fromtimestamp(event_reset, UTC), "event"
    elif (parsed := parse_reset_time(text, now=now, local_tz=local_tz)) is not None:
        resets_at, source = parsed, "text"
    if resets_at is None:
        resume_at = now + timedelta(seconds=policy.fallback_wait_s)
    else:
        resume_at = max(resets_at, now) + timedelta(seconds=policy.reset_margin_s)
    resume_at = min(resume_at, now + timedelta(seconds=policy.max_wait_s))
    kind = rate_limit_type or _limit_type_from_text(text)
    wording = _first_line(text) or "usage limit reached"
    return LimitDecision(
        LimitAction.WAIT_FOR_RESET,
        f"usage limit ({kind or 'unknown window'}): {wording}",
        resume_at=resume_at,
        resets_at=resets_at,
        delay_s=(resume_at - now).total_seconds(),
        rate_limit_type=kind,
        reset_source=source,
    )


def _limit_type_from_text(text: str) -> str | None:
    lowered = text.lower()
    if "weekly" in lowered or "7-day" in lowered:
        return "seven_day"
    if "5-hour" in lowered or "session limit" in lowered:
        return "five_hour"
    if "spend limit" in lowered or "monthly" in lowered or "extra usage" in lowered:
        return "overage"
    return None


# --- reports to the orchestrator ---


def rejection_report(decision: LimitDecision) -> LimitReport:
    """POST .../limited for a usage limit the worker now waits out."""
    return LimitReport(
        status=LimitStatus.REJECTED,
        resets_at=decision.resets_at or decision.resume_at,
        rate_limit_type=decision.rate_limit_type,
        utilization=1.0,
        message=decision.reason[:2000],
    )


def warning_report(signal: RateLimitSignal) -> LimitReport:
    """POST .../limited for a window close to its limit (utilization only; nothing waits)."""
    resets = signal.window_resets_at
    return LimitReport(
        status=LimitStatus.ALLOWED_WARNING,
        resets_at=datetime.fromtimestamp(resets, UTC) if resets else None,
        rate_limit_type=signal.rate_limit_type,
        utilization=signal.window_utilization,
        message=f"approaching the {signal.rate_limit_type or 'usage'} limit",
    )


# --- reset times ---------------------------------------------------------------

_EPOCH = re.compile(r"\|\s*(\d{10})\b")
_RESET_IN = re.compile(
    r"resets?\s+in\s+(?:(?P<h>\d+)\s*h(?:ours?|rs?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:ute)?s?)?)?",
    re.IGNORECASE,
)
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
)}  # fmt: skip
_RESET_AT = re.compile(
    r"resets?\s+(?:at\s+|on\s+)?"
    r"(?:(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})"
    r"(?:st|nd|rd|th)?,?(?:\s+(?P<year>\d{4}))?(?:,?\s*at)?\s*)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"(?:\s*\((?P<tz>[^)\s]+)\)|\s+(?P<tzword>UTC|GMT|Z)\b)?",
    re.IGNORECASE,
)


def parse_reset_time(
    text: str, *, now: datetime, local_tz: tzinfo | None = None
) -> datetime | None:
    """The reset time a usage-limit message announces, as an aware datetime; None if none.

    Understands ``|<epoch>`` (legacy), ``resets 4:50pm (America/Denver)``, ``resets 2am``
    (the worker's local time zone, as the CLI prints it), ``resets May 5 at 9pm (TZ)``,
    ``reset at 1pm (Etc/GMT+5)``, ``resets 14:00 (UTC)`` and ``resets in 2h 30m``. A time
    of day already past today means tomorrow; a date already past means next year.
    """
    if match := _EPOCH.search(text):
        return datetime.fromtimestamp(int(match.group(1)), UTC)
    if (match := _RESET_IN.search(text)) and (match.group("h") or match.group("m")):
        hours, minutes = int(match.group("h") or 0), int(match.group("m") or 0)
        return now + timedelta(hours=hours, minutes=minutes)
    for match in _RESET_AT.finditer(text):
        found = _from_clock(match, now=now, local_tz=local_tz)
        if found is not None:
            return found
    return None


def _from_clock(match: re.Match[str], *, now: datetime, local_tz: tzinfo | None) -> datetime | None:
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    ampm = (match.group("ampm") or "").replace(".", "").lower()
    if not ampm and match.group("minute") is None and not match.group("month"):
        return None  # a bare number ("resets 5 ...") is not a time
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    zone = _zone(match.group("tz") or match.group("tzword"), local_tz)
    here = now.astimezone(zone)
    if match.group("month"):
        month = _MONTHS[match.group("month").lower()[:3]]
        year = int(match.group("year") or here.year)
        try:
            found = datetime(year, month, int(match.group("day")), hour, minute, tzinfo=zone)
        except ValueError:
            return None
        if found <= here and not match.group("year"):
            found = found.replace(year=year + 1)
        return found
    found = here.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if found <= here:
        found = _next_day(found)
    return found


def _next_day(moment: datetime) -> datetime:
    """The same wall-clock time one calendar day later (DST-safe for ZoneInfo zones)."""
    day = (moment.replace(tzinfo=None) + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, moment.hour, moment.minute, tzinfo=moment.tzinfo)


def _zone(name: str | None, local_tz: tzinfo | None) -> tzinfo:
    if name:
        if name.upper() in ("UTC", "GMT", "Z"):
            return UTC
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return local_tz or local_timezone()


def local_timezone() -> tzinfo:
    """The zone Claude Code prints local times in: TZ when it names one, else the system's."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or UTC

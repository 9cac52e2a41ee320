"""Time for the orchestrator, injectable so tests can move the day forward."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo


class Clock:
    """Wall-clock time in the factory's time zone (FACTORY_TIMEZONE, default local)."""

    def __init__(self, tz_name: str | None = None) -> None:
        self.tz: tzinfo = ZoneInfo(tz_name) if tz_name else datetime.now().astimezone().tzinfo or UTC

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def day_start(self) -> datetime:
        now = self.now()
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    def month_start(self) -> datetime:
        return self.day_start().replace(day=1)

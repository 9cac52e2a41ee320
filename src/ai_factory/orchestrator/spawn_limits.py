"""The rate limiter: may the factory start another worker now?

Everything it decides from is persisted, so a restart changes nothing:
running workers and the last spawn come from the `workers` table, iterations and
cost from the `iterations` table (the day starts at midnight in FACTORY_TIMEZONE),
and subscription windows from `usage_limits`. When any worker reports that Claude
rejected it (a 5-hour or weekly window is used up), spawning pauses for every
worker until that window resets. Before that, once Claude warns that a window is close
to its limit (``allowed_warning``), the factory goes single file (`single_file`): one
worker sends requests, the others wait their turn, so that when the refusal comes no
other worker has a request in flight.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID

from pydantic import Field

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.models import FactoryPause, LimitReport, LimitStatus, WireModel
from ai_factory.orchestrator.clock import Clock

log = logging.getLogger(__name__)

Q = load_queries("limits")

# A rejection without a reset time (should not happen; workers send a fallback) pauses this long.
DEFAULT_PAUSE = timedelta(minutes=15)


class UsageWindow(WireModel):
    window_type: str
    status: str
    resets_at: datetime | None = None
    utilization: float | None = None
    message: str | None = None
    updated_at: datetime


class RateLimitStatus(WireModel):
    active_workers: int
    max_workers: int
    iterations_today: int
    daily_budget: int
    cooldown_seconds: float
    cooldown_remaining: float = 0.0
    tokens_today: int = 0
    cost_today_usd: float = 0.0
    cost_month_usd: float = 0.0
    daily_cost_budget_usd: float | None = None
    monthly_cost_budget_usd: float | None = None
    paused_until: datetime | None = None
    pause_reason: str | None = None
    # near a limit (Claude warned), only this worker sends requests; the others wait their turn
    single_file_worker: UUID | None = None
    single_file_reason: str | None = None
    windows: list[UsageWindow] = Field(default_factory=list)
    can_spawn: bool
    blocked_by: list[str] = Field(default_factory=list)


class RateLimiter:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        max_workers: int,
        daily_budget: int,
        cooldown_seconds: float,
        daily_cost_budget_usd: float | None = None,
        monthly_cost_budget_usd: float | None = None,
        single_file: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_workers = max_workers
        self.daily_budget = daily_budget
        self.cooldown_seconds = cooldown_seconds
        self.daily_cost_budget_usd = daily_cost_budget_usd
        self.monthly_cost_budget_usd = monthly_cost_budget_usd
        self.single_file = single_file

    async def record_limit(
        self, report: LimitReport, *, worker_id: UUID | None = None, work_item_id: UUID | None = None
    ) -> None:
        resets_at = report.resets_at
        if report.status is LimitStatus.REJECTED and resets_at is None:
            resets_at = self.clock.now() + DEFAULT_PAUSE
        await self.db.execute(
            Q["record_window"],
            {
                "window_type": report.rate_limit_type or "unknown",
                "status": report.status.value,
                "resets_at": resets_at,
                "utilization": report.utilization,
                "message": report.message,
                "work_item_id": work_item_id,
                "worker_id": worker_id,
            },
        )
        if report.status is LimitStatus.REJECTED:
            log.warning(
                "limits.paused window=%s until=%s", report.rate_limit_type or "unknown", resets_at
            )

    async def pause(self) -> FactoryPause:
        """The usage-limit pause in force now (what a worker asks before each request),
        or, near a limit, the one worker that may go on."""
        windows = [UsageWindow.model_validate(r) for r in await self.db.fetch_all(Q["windows"])]
        return await self._pause_or_turn(windows, self.clock.now())

    async def _pause_or_turn(self, windows: list[UsageWindow], now: datetime) -> FactoryPause:
        pause = _rejection_pause(windows, now)
        if pause.paused_until is not None or not self.single_file:
            return pause
        near = [w for w in windows if w.status == LimitStatus.ALLOWED_WARNING.value
                and w.resets_at is not None and w.resets_at > now]  # fmt: skip
        if not near:
            return pause
        holder = await self.db.fetch_one(Q["single_file_worker"])
        if holder is None:
            return pause
        window = max(near, key=lambda w: w.utilization or 0.0)
        used = f" ({window.utilization:.0%} used)" if window.utilization is not None else ""
        return FactoryPause(
            rate_limit_type=window.window_type,
            reason=f"{window.window_type} usage window close to its limit{used}: one worker at a time",
            single_file_worker=holder["id"],
        )

    async def status(self) -> RateLimitStatus:
        now = self.clock.now()
        spawn = await self.db.fetch_one(Q["spawn_state"])
        today = await self.db.fetch_one(Q["usage_since"], {"since": self.clock.day_start()})
        month = await self.db.fetch_one(Q["usage_since"], {"since": self.clock.month_start()})
        windows = [UsageWindow.model_validate(r) for r in await self.db.fetch_all(Q["windows"])]
        assert spawn is not None and today is not None and month is not None

        # The last spawn is the newest worker row (the scheduler writes it before its pass
        # ends, so every orchestrator on the database sees it).
        cooldown_remaining = 0.0
        if spawn["last_spawn_at"] is not None:
            since_spawn = (spawn["db_now"] - spawn["last_spawn_at"]).total_seconds()
            cooldown_remaining = max(0.0, self.cooldown_seconds - since_spawn)

        pause = await self._pause_or_turn(windows, now)
        paused_until = pause.paused_until

        blocked = []
        if spawn["active"] >= self.max_workers:
            blocked.append("max_workers")
        if today["iterations"] >= self.daily_budget:
            blocked.append("daily_budget")
        if cooldown_remaining > 0:
            blocked.append("cooldown")
        if paused_until is not None:
            blocked.append("usage_limit")
        if self.daily_cost_budget_usd is not None and today["cost_usd"] >= self.daily_cost_budget_usd:
            blocked.append("daily_cost_budget")
        if self.monthly_cost_budget_usd is not None and month["cost_usd"] >= self.monthly_cost_budget_usd:
            blocked.append("monthly_cost_budget")

        return RateLimitStatus(
            active_workers=spawn["active"],
            max_workers=self.max_workers,
            iterations_today=today["iterations"],
            daily_budget=self.daily_budget,
            cooldown_seconds=self.cooldown_seconds,
            cooldown_remaining=round(cooldown_remaining, 3),
            tokens_today=today["tokens"],
            cost_today_usd=today["cost_usd"],
            cost_month_usd=month["cost_usd"],
            daily_cost_budget_usd=self.daily_cost_budget_usd,
            monthly_cost_budget_usd=self.monthly_cost_budget_usd,
            paused_until=paused_until,
            pause_reason=pause.reason if paused_until is not None else None,
            single_file_worker=pause.single_file_worker,
            single_file_reason=pause.reason if pause.single_file_worker is not None else None,
            windows=windows,
            can_spawn=not blocked,
            blocked_by=blocked,
        )


def _rejection_pause(windows: list[UsageWindow], now: datetime) -> FactoryPause:
    rejected = [w for w in windows if w.status == "rejected" and w.resets_at and w.resets_at > now]
    if not rejected:
        return FactoryPause()
    last = max(rejected, key=lambda w: w.resets_at)  # type: ignore[arg-type,return-value]
    return FactoryPause(
        paused_until=last.resets_at,
        rate_limit_type=last.window_type,
        reason=", ".join(f"{w.window_type} usage limit" for w in rejected),
    )

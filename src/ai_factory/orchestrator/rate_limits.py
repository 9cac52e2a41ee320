"""The rate limiter: may the factory start another worker now?

Counts come from the database (running workers, iterations recorded today), never
from in-memory counters, so they survive restarts and agree across processes.
"""

from __future__ import annotations

import time

from pydantic import Field

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.models import WireModel
from ai_factory.orchestrator.clock import Clock

Q = load_queries("metrics")


class RateLimitStatus(WireModel):
    active_workers: int
    max_workers: int
    iterations_today: int
    daily_budget: int
    cooldown_seconds: float
    cooldown_remaining: float = 0.0
    cost_today_usd: float = 0.0
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
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_workers = max_workers
        self.daily_budget = daily_budget
        self.cooldown_seconds = cooldown_seconds
        self._last_spawn = float("-inf")

    def record_spawn(self) -> None:
        self._last_spawn = time.monotonic()

    async def status(self) -> RateLimitStatus:
        active = (await self.db.fetch_one(Q["active_workers"]))["n"]  # type: ignore[index]
        usage = await self.db.fetch_one(Q["usage_since"], {"since": self.clock.day_start()})
        assert usage is not None
        remaining = max(0.0, self.cooldown_seconds - (time.monotonic() - self._last_spawn))
        blocked = []
        if active >= self.max_workers:
            blocked.append("max_workers")
        if usage["iterations"] >= self.daily_budget:
            blocked.append("daily_budget")
        if remaining > 0:
            blocked.append("cooldown")
        return RateLimitStatus(
            active_workers=active,
            max_workers=self.max_workers,
            iterations_today=usage["iterations"],
            daily_budget=self.daily_budget,
            cooldown_seconds=self.cooldown_seconds,
            cooldown_remaining=round(remaining, 3),
            cost_today_usd=usage["cost_usd"],
            can_spawn=not blocked,
            blocked_by=blocked,
        )

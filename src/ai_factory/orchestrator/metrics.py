"""Metrics collection (`MetricsCollector`): the factory-wide summary and the recent
per-worker records, for the API."""

from __future__ import annotations

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.models import FactoryMetrics, WorkerMetrics
from ai_factory.orchestrator.clock import Clock

Q = load_queries("metrics")


class MetricsCollector:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def summary(self) -> FactoryMetrics:
        row = await self.db.fetch_one(Q["summary"], {"day_start": self.clock.day_start()})
        return FactoryMetrics.model_validate(row)

    async def recent(self, *, limit: int = 200) -> list[WorkerMetrics]:
        rows = await self.db.fetch_all(Q["recent"], {"limit": limit})
        return [WorkerMetrics.model_validate(r) for r in rows]

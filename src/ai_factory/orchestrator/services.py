"""The orchestrator's collaborators, built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from ai_factory.core.db.database import Database
from ai_factory.core.learnings.store import LearningStore
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.clock import Clock
from ai_factory.orchestrator.conflicts import (
    ConflictDetector,
    PostgresConflictDetector,
    RedisConflictDetector,
)
from ai_factory.orchestrator.health import HeartbeatWitness, RedisLeases
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.metrics import MetricsCollector
from ai_factory.orchestrator.queue import QueueManager
from ai_factory.orchestrator.spawn_limits import RateLimiter
from ai_factory.orchestrator.submission import SubmissionRules
from ai_factory.orchestrator.worker_runtime import WorkerRuntime
from ai_factory.orchestrator.workers import WorkerManager


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    ledger: Ledger
    queue: QueueManager
    workers: WorkerManager
    conflicts: ConflictDetector
    learnings: LearningStore
    metrics: MetricsCollector
    rate_limiter: RateLimiter
    logs: WorkerLogs
    runtime: WorkerRuntime
    redis: aioredis.Redis | None = None

    @classmethod
    def build(cls, settings: Settings, db: Database, *, clock: Clock | None = None) -> Services:
        clock = clock or Clock(settings.factory_timezone)
        redis = aioredis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        conflicts: ConflictDetector = (
            RedisConflictDetector(redis=redis, prefix=settings.redis_prefix)
            if redis is not None
            else PostgresConflictDetector(db=db)
        )
        ledger = Ledger(db=db, conflicts=conflicts)
        queue = QueueManager(
            ledger=ledger,
            default_max_attempts=settings.max_attempts,
            rules=SubmissionRules.from_settings(settings),
        )
        learnings = LearningStore.from_settings(settings, db=db)
        leases = (
            RedisLeases(redis=redis, prefix=settings.redis_prefix, ttl_s=settings.heartbeat_timeout_seconds)
            if redis is not None
            else None
        )
        witness = HeartbeatWitness(
            gap_s=settings.heartbeat_timeout_seconds, last_failure=lambda: db.last_failure_at
        )
        workers = WorkerManager(
            ledger=ledger, conflicts=conflicts, learnings=learnings, leases=leases
        )
        rate_limiter = RateLimiter(
            db=db,
            clock=clock,
            max_workers=settings.max_workers,
            daily_budget=settings.daily_budget,
            cooldown_seconds=settings.cooldown_seconds,
            daily_cost_budget_usd=settings.daily_cost_budget_usd,
            monthly_cost_budget_usd=settings.monthly_cost_budget_usd,
            single_file=settings.limit_single_file,
        )
        logs = WorkerLogs(root=settings.factory_home / "logs", max_bytes=settings.log_max_bytes)
        runtime = WorkerRuntime.build(
            settings,
            ledger=ledger,
            rate_limiter=rate_limiter,
            logs=logs,
            witness=witness,
            leases=leases,
            redis=redis,
        )
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            ledger=ledger,
            queue=queue,
            workers=workers,
            conflicts=conflicts,
            learnings=learnings,
            metrics=MetricsCollector(db=db, clock=clock),
            rate_limiter=rate_limiter,
            logs=logs,
            runtime=runtime,
            redis=redis,
        )

    async def close(self) -> None:
        """Release what `build` opened (the database belongs to the caller)."""
        if self.redis is not None:
            await self.redis.aclose()

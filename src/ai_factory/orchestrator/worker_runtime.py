"""The worker runtime of one orchestrator: start-up recovery, the loops, graceful shutdown.

At start-up, workers left by a previous orchestrator are looked at one by one: a
process or container still running is adopted (watched as if we had started it); a
worker whose heartbeat is fresh but which we cannot see (another host, an external
worker) is left to the health check; every other one is dead, so its item is
requeued (its attempt counted, as for any crash). Items claimed with no worker at
all go back with their attempt refunded.

Then the event hub, the scheduler, the exit handler and the health check run until
cancelled. `shutdown()` stops claiming, lets running workers finish for
SHUTDOWN_GRACE_SECONDS (cut short by `hurry()`), then stops the rest and hands
their items back without using an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from ai_factory.core.settings import Settings
from ai_factory.core.waiting import wait_event
from ai_factory.orchestrator.events import EventHub
from ai_factory.orchestrator.health import HealthMonitor, HeartbeatWitness, RedisLeases
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.lifecycle import WorkerLifecycle
from ai_factory.orchestrator.logs import WorkerLogs
from ai_factory.orchestrator.scheduler import Scheduler
from ai_factory.orchestrator.spawn_limits import RateLimiter
from ai_factory.orchestrator.spawners import build_spawner, worker_api_url

log = logging.getLogger(__name__)

POLL_S = 0.2


class WorkerRuntime:
    def __init__(
        self,
        *,
        ledger: Ledger,
        lifecycle: WorkerLifecycle,
        scheduler: Scheduler,
        health: HealthMonitor,
        events: EventHub,
        heartbeat_timeout_s: float,
        shutdown_grace_s: float,
    ) -> None:
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.scheduler = scheduler
        self.health = health
        self.events = events
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.shutdown_grace_s = shutdown_grace_s
        self.started = asyncio.Event()
        self._hurry = asyncio.Event()

    async def run(self) -> None:
        """Recover, then run every loop until cancelled (the composition root has checked
        the spawner before serving)."""
        events = asyncio.create_task(self.events.run(), name="events")
        tasks = [events]
        try:
            await wait_event(self.events.connected, 5)  # not required: the tick backs it
            await self.recover()
            tasks += [
                asyncio.create_task(self.lifecycle.run(self.events), name="lifecycle"),
                asyncio.create_task(self.health.run(), name="health"),
                asyncio.create_task(self.scheduler.run(), name="scheduler"),
            ]
            self.started.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.lifecycle.spawner.close()

    async def recover(self) -> None:
        adopted = requeued = 0
        for state in await self.ledger.live_workers():
            if not state.holds_item:
                self.lifecycle.in_background(self.lifecycle.settle(state))
            elif self.lifecycle.owns(state) and await self.lifecycle.spawner.watch(state.handle):
                if state.work_item_id is not None:
                    await self.ledger.adopt(state.id, state.work_item_id, how=state.handle.describe())
                adopted += 1
            elif self.lifecycle.owns(state) or state.silent_s > self.heartbeat_timeout_s:
                await self.lifecycle.retire(
                    state, reason="worker gone after an orchestrator restart"
                )
                requeued += 1
        orphans = await self.health.requeue_orphans(grace_s=0)
        log.info("runtime.recovered adopted=%s requeued=%s orphans=%s", adopted, requeued, orphans)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        ledger: Ledger,
        rate_limiter: RateLimiter,
        logs: WorkerLogs,
        witness: HeartbeatWitness,
        leases: RedisLeases | None = None,
        redis: aioredis.Redis | None = None,
    ) -> WorkerRuntime:
        """The runtime FACTORY_SPAWNER and the timing settings describe (no I/O)."""
        events = EventHub(database_url=ledger.db.url, redis=redis, prefix=settings.redis_prefix)
        lifecycle = WorkerLifecycle(
            ledger=ledger,
            spawner=build_spawner(settings, logs=logs),
            orchestrator_url=worker_api_url(settings),
            leases=leases,
            spawn_retry_s=settings.spawn_retry_seconds,
        )
        return cls(
            ledger=ledger,
            lifecycle=lifecycle,
            scheduler=Scheduler(
                ledger=ledger,
                lifecycle=lifecycle,
                rate_limiter=rate_limiter,
                events=events,
            ),
            health=HealthMonitor(
                ledger=ledger,
                lifecycle=lifecycle,
                logs=logs,
                heartbeat_timeout_s=settings.heartbeat_timeout_seconds,
                interval_s=settings.health_check_interval_seconds,
                witness=witness,
                leases=leases,
            ),
            events=events,
            heartbeat_timeout_s=settings.heartbeat_timeout_seconds,
            shutdown_grace_s=settings.shutdown_grace_seconds,
        )

    def hurry(self) -> None:
        """Cut the shutdown grace period short (second signal)."""
        self._hurry.set()

    async def shutdown(self) -> int:
        """Stop claiming, let workers finish for the grace period, hand back the rest."""
        self.scheduler.pause()
        deadline = time.monotonic() + self.shutdown_grace_s
        log.info("runtime.draining grace_s=%s", self.shutdown_grace_s)
        while time.monotonic() < deadline and not self._hurry.is_set():
            if not [s for s in await self.ledger.live_workers() if self.lifecycle.owns(s)]:
                break
            await wait_event(self._hurry, POLL_S)
        states = [s for s in await self.ledger.live_workers() if self.lifecycle.owns(s)]
        await asyncio.gather(
            *(
                self.lifecycle.retire(s, reason="orchestrator shutting down", refund_attempt=True)
                for s in states
            )
        )
        await self.lifecycle.drain()
        log.info("runtime.stopped handed_back=%s", len(states))
        return len(states)

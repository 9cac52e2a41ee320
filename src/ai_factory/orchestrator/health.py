"""Worker liveness: heartbeat leases and the periodic health check.

A heartbeat refreshes the worker's lease: a Redis key with a TTL of
HEARTBEAT_TIMEOUT_SECONDS when Redis is configured, the `workers.last_heartbeat`
column always. Every HEALTH_CHECK_INTERVAL_SECONDS the monitor looks at every live worker:

- silent for longer than HEARTBEAT_TIMEOUT_SECONDS (lease expired): presumed dead;
- its process or container is gone (an end the spawner could not report, e.g. it
  ended while no orchestrator ran): crashed;
- its item is no longer held under its lease (cancelled, taken over): pointless.

The first two requeue the item (failed once attempts reach MAX_ATTEMPTS) with the
reason recorded; all three stop the process. Items claimed without any live worker
(the orchestrator died between the claim and the spawn) go back to the queue with
their attempt refunded, and logs past LOG_MAX_BYTES are rotated.

Silence only counts while the orchestrator could have heard the worker
(`HeartbeatWitness`): when the database is unreachable, the heartbeats that fail
are not the workers' fault. After an outage (a failed pass, a heartbeat the API
could not record, or passes that stopped for a while) a worker is judged silent
only once the orchestrator has again been able to hear it for a whole
HEARTBEAT_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ai_factory.core.errors import StoreError
from ai_factory.orchestrator.ledger import Ledger, WorkerState
from ai_factory.orchestrator.lifecycle import WorkerLifecycle
from ai_factory.orchestrator.logs import WorkerLogs

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 10.0  # a claim is followed by its worker row within milliseconds
SPAWN_GRACE_S = 2.0  # the handle is recorded a moment after the row


class HeartbeatWitness:
    """Since when this orchestrator could have heard every worker's heartbeat.

    It is blind from any database failure of this process (`last_failure`: a failed
    health pass, a heartbeat the API could not record, any query) until the next
    successful pass; `sight_s()` at each successful pass says for how long it has
    been able to hear. A gap between passes longer than `gap_s` (a blocked loop, a
    suspended laptop) counts as blindness too.
    """

    def __init__(
        self,
        *,
        gap_s: float,
        last_failure: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gap_s = gap_s
        self.last_failure = last_failure
        self.clock = clock
        self._since: float | None = clock()
        self._last_pass: float | None = None

    def blind(self) -> None:
        if self._since is not None:
            log.warning("health.blind (the database cannot be reached; silence is not counted)")
        self._since = None

    def sight_s(self) -> float:
        now = self.clock()
        gap = self._last_pass is not None and now - self._last_pass > self.gap_s
        failed = self.last_failure()
        if self._since is None or gap or (failed is not None and failed >= self._since):
            log.info("health.sight_restored grace_s=full heartbeat timeout")
            self._since = now
        self._last_pass = now
        return now - self._since


class RedisLeases:
    """Heartbeat leases as Redis keys ``<prefix>:heartbeat:<worker id>`` with a TTL."""

    def __init__(self, *, redis: aioredis.Redis, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl_s * 1000))

    def key(self, worker_id: UUID) -> str:
        return f"{self.prefix}:heartbeat:{worker_id}"

    async def beat(self, worker_id: UUID) -> None:
        # A hint only: with Redis down the heartbeat still lands in workers.last_heartbeat.
        try:
            await self.redis.set(self.key(worker_id), "1", px=self.ttl_ms)
        except (RedisError, OSError) as exc:
            log.warning("health.lease_write_failed worker=%s error=%s", worker_id, type(exc).__name__)

    async def expired(self, worker_ids: list[UUID]) -> set[UUID]:
        """Workers whose lease key is gone; none when Redis cannot be read (the column decides)."""
        if not worker_ids:
            return set()
        try:
            values = await self.redis.mget([self.key(w) for w in worker_ids])
        except (RedisError, OSError) as exc:
            log.warning("health.lease_read_failed error=%s", type(exc).__name__)
            return set()
        return {w for w, v in zip(worker_ids, values, strict=True) if v is None}


class HealthMonitor:
    def __init__(
        self,
        *,
        ledger: Ledger,
        lifecycle: WorkerLifecycle,
        logs: WorkerLogs,
        heartbeat_timeout_s: float,
        interval_s: float,
        witness: HeartbeatWitness,
        leases: RedisLeases | None = None,
    ) -> None:
        self.witness = witness
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.logs = logs
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.interval_s = interval_s
        self.leases = leases

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # one failed pass is logged; the next one runs anyway
                log.exception("health.check_failed")

    async def check(self) -> None:
        try:
            states = await self.ledger.live_workers()
        except StoreError:
            self.witness.blind()
            raise
        expired = await self._expired(states, sight_s=self.witness.sight_s())
        for state in states:
            await self._check_worker(state, state.id in expired)
        await self._stop_finished(live={state.id for state in states})
        await self.requeue_orphans(grace_s=ORPHAN_GRACE_S)
        for state in states:
            if state.work_item_id is not None:
                await asyncio.to_thread(self.logs.enforce_cap, state.work_item_id)

    async def requeue_orphans(self, *, grace_s: float) -> int:
        """Claimed items that no live worker holds go back to the queue, attempt refunded."""
        count = 0
        for orphan in await self.ledger.orphaned_items(grace_s=grace_s):
            if await self.ledger.release_orphan(orphan, reason="no live worker holds it"):
                count += 1
                log.warning("health.orphan_requeued item=%s", orphan.id)
        return count

    # --- helpers ---

    async def _expired(self, states: list[WorkerState], *, sight_s: float) -> set[UUID]:
        if sight_s <= self.heartbeat_timeout_s:
            return set()  # not heard long enough (start-up, or just after an outage)
        old = [s for s in states if s.age_s > self.heartbeat_timeout_s]
        silent = {s.id for s in old if s.silent_s > self.heartbeat_timeout_s}
        if self.leases is not None:
            silent |= await self.leases.expired([s.id for s in old])
        return silent

    async def _check_worker(self, state: WorkerState, expired: bool) -> None:
        lifecycle = self.lifecycle
        if not state.holds_item:
            lifecycle.in_background(lifecycle.settle(state))
        elif expired:
            log.warning("worker.heartbeat_missed worker=%s silent_s=%.0f", state.id, state.silent_s)
            await lifecycle.retire(
                state, reason=f"no heartbeat for {self.heartbeat_timeout_s:g}s"
            )
        elif (
            lifecycle.owns(state)
            and state.age_s > SPAWN_GRACE_S
            and not await lifecycle.spawner.alive(state.handle)
        ):
            code = state.exit_code
            detail = f" (exit code {code})" if code is not None else ""
            await lifecycle.retire(state, reason=f"worker process is gone{detail} without reporting a result")

    async def _stop_finished(self, *, live: set[UUID]) -> None:
        """Processes still running for workers that were finished (killed, or done and
        lingering). Only handles of workers not in this pass's `live` set are looked up."""
        for handle in self.lifecycle.spawner.tracked():
            if handle.worker_id in live:
                continue
            state = await self.ledger.worker_state(handle.worker_id)
            if state is not None and not state.live:
                self.lifecycle.in_background(self.lifecycle.settle(state))

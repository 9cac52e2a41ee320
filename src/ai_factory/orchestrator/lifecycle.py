"""Worker lifecycle on this orchestrator: launch, exits, stops.

`WorkerLifecycle` claims the next item (the ledger creates the worker row with its
token in the same statement), starts the worker through the spawner and records
its handle, and reacts when the worker ends: a worker that exits without
reporting had crashed, so its item is requeued (or failed once its attempts are
used up) exactly as a missed heartbeat would. It also stops processes that no
longer have anything to do: the item was cancelled, the worker was killed through
the API, or its lease went to someone else.

Every state change is a ledger transition. A worker given up is stopped first
and confirmed gone, then its row is finished (its later calls get 409) and its
item handed back, so two attempts of one item never run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from ai_factory.core.errors import ConflictError
from ai_factory.core.models import WorkerStatus, WorkItemStatus
from ai_factory.orchestrator.events import RECONNECTED, EventHub
from ai_factory.orchestrator.ledger import Ledger, WorkerState
from ai_factory.orchestrator.spawners import Spawner, WorkerExit, WorkerLaunch
from ai_factory.orchestrator.tokens import hash_token, new_worker_token
from ai_factory.orchestrator.workers import HeartbeatLeases

log = logging.getLogger(__name__)

HELD_ITEM = ("assigned", "running")  # an item status event from these may leave a worker idle
STOP_GRACE_S = 5.0  # SIGTERM (docker stop) before SIGKILL
EXIT_GRACE_S = 10.0  # a worker that reported its result gets this long to exit by itself
POLL_S = 0.1


class Launch(StrEnum):
    NOTHING = "nothing"  # the queue had nothing to claim
    STARTED = "started"
    FAILED = "failed"  # claimed, but the worker could not start: the item was handed back


class WorkerLifecycle:
    def __init__(
        self,
        *,
        ledger: Ledger,
        spawner: Spawner,
        orchestrator_url: str,
        leases: HeartbeatLeases | None = None,
        spawn_retry_s: float = 30.0,
    ) -> None:
        self.ledger = ledger
        self.spawner = spawner
        self.orchestrator_url = orchestrator_url
        self.leases = leases
        self.spawn_retry_s = spawn_retry_s
        self._stopping: set[UUID] = set()
        self._settling: set[UUID] = set()
        self._background: set[asyncio.Task[None]] = set()

    def owns(self, state: WorkerState) -> bool:
        """Whether this orchestrator's spawner can see and stop the worker."""
        return state.handle.spawner == self.spawner.name and self.spawner.can_check(state.handle)

    # --- launch ---

    async def launch_next(self) -> Launch:
        """Claim the most urgent queued item and start its worker; on failure give the item
        back (attempt refunded, held back SPAWN_RETRY_SECONDS)."""
        worker_id, token = uuid.uuid4(), new_worker_token()
        assignment = await self.ledger.claim_next(
            worker_id=worker_id,
            token_hash=hash_token(token),
            spawner=self.spawner.name,
            reason="claimed by the scheduler",
        )
        if assignment is None:
            return Launch.NOTHING
        item = assignment.item
        if self.leases is not None:
            await self.leases.beat(worker_id)
        launch = WorkerLaunch(
            worker_id=worker_id,
            token=SecretStr(token),
            item=item,
            orchestrator_url=self.orchestrator_url,
            attempt=item.attempts,
        )
        try:
            handle = await self.spawner.spawn(launch)
        except Exception as exc:  # FactoryError, or an OSError around the spawn (log file ...)
            log.error("worker.spawn_failed worker=%s item=%s error=%s", worker_id, item.id, exc)
            # Not the item's fault (engine down, image gone, disk full): its attempt is given
            # back and it waits a while, so an outage does not fail the whole queue.
            await self._give_up(
                worker_id,
                f"could not start the worker: {exc}",
                refund_attempt=True,
                retry_in_s=self.spawn_retry_s,
            )
            return Launch.FAILED
        await self.ledger.record_handle(worker_id, handle)
        log.info(
            "worker.spawned worker=%s item=%s attempt=%s %s",
            worker_id, item.id, item.attempts, handle.describe(),
        )  # fmt: skip
        return Launch.STARTED

    # --- ends and stops ---

    async def handle_exit(self, ended: WorkerExit) -> None:
        """A spawned worker ended: if it never reported a result, it crashed."""
        await self.ledger.record_exit(ended.worker_id, ended.exit_code)
        state = await self.ledger.worker_state(ended.worker_id)
        if state is None or not state.live or ended.worker_id in self._stopping:
            return
        code = "an unknown code" if ended.exit_code is None else f"code {ended.exit_code}"
        await self._give_up(ended.worker_id, f"worker exited with {code} without reporting a result")

    async def retire(self, state: WorkerState, *, reason: str, refund_attempt: bool = False) -> None:
        """Finish a live worker: stop its process, then fence it off and hand its item back
        (or fail it).

        A process this orchestrator can stop is stopped first, and confirmed gone (SIGTERM,
        then SIGKILL after STOP_GRACE_S), so the next attempt never starts beside it in the
        same worktree (a SIGSTOPped worker would otherwise wake up later and work on).
        Until then its lease stays current: a result it reports meanwhile is a real one.
        A worker we cannot see (another host) is fenced only.
        """
        await self.stop(state)
        await self._give_up(state.id, reason, refund_attempt=refund_attempt)

    async def stop(self, state: WorkerState) -> None:
        """Stop the worker's process or container, if it is still there."""
        if state.id in self._stopping or not self.owns(state):
            return
        self._stopping.add(state.id)
        try:
            if await self.spawner.alive(state.handle):
                log.info("worker.stopping worker=%s %s", state.id, state.handle.describe())
                await self.spawner.stop(state.handle, grace_s=STOP_GRACE_S)
        finally:
            self._stopping.discard(state.id)

    async def settle(self, state: WorkerState) -> None:
        """Stop a worker whose work is over, or whose item went away under it.

        A worker that was killed, or whose item was cancelled, is stopped at once. One
        whose item it completed, failed or reported stuck itself gets EXIT_GRACE_S to
        finish its call and exit by itself.
        """
        if (state.live and state.holds_item) or state.id in self._settling:
            return
        self._settling.add(state.id)
        try:
            urgent = state.status is WorkerStatus.DEAD or state.item_status in (
                WorkItemStatus.CANCELLED, None)
            if not urgent:
                await self._await_exit(state, EXIT_GRACE_S)
                state = await self.ledger.worker_state(state.id) or state
                if state.live and state.holds_item:
                    return
            if state.live:
                await self._give_up(state.id, f"its work item is {state.item_status or 'gone'}")
            await self.stop(state)
        finally:
            self._settling.discard(state.id)

    async def run(self, events: EventHub | None) -> None:
        """Handle spawner exits, and item changes that leave a worker without work."""
        tasks = [asyncio.create_task(self._exits(), name="lifecycle-exits")]
        if events is not None:
            tasks.append(asyncio.create_task(self._item_changes(events), name="lifecycle-events"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- helpers ---

    async def _await_exit(self, state: WorkerState, timeout_s: float) -> None:
        if not self.owns(state):
            await asyncio.sleep(timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and await self.spawner.alive(state.handle):
            await asyncio.sleep(POLL_S)

    async def _exits(self) -> None:
        while True:
            ended = await self.spawner.exits.get()
            try:
                await self.handle_exit(ended)
            except Exception:  # one bad exit must not stop the others from being handled
                log.exception("worker.exit_handling_failed worker=%s", ended.worker_id)

    async def _item_changes(self, events: EventHub) -> None:
        async with events.subscribe() as feed:
            async for event in feed:
                if event.kind == RECONNECTED or event.work_item_id is None:
                    continue
                if event.kind != "status" or event.from_status not in HELD_ITEM:
                    continue
                try:
                    for state in await self._workers_of(event.work_item_id):
                        self.in_background(self.settle(state))
                except Exception:
                    log.exception("worker.settle_failed item=%s", event.work_item_id)

    async def _workers_of(self, item_id: UUID) -> list[WorkerState]:
        handles = [h for h in self.spawner.tracked() if h.work_item_id == item_id]
        states = [await self.ledger.worker_state(h.worker_id) for h in handles]
        return [s for s in states if s is not None]

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a stop or settle without waiting for it; failures are logged."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("worker.background_failed")

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background stops (at shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _give_up(
        self, worker_id: UUID, reason: str, *, refund_attempt: bool = False, retry_in_s: float = 0.0
    ) -> None:
        try:
            if refund_attempt:
                await self.ledger.hand_back(worker_id, reason=reason, retry_in_s=retry_in_s)
            else:
                await self.ledger.requeue(worker_id, reason=reason)
        except ConflictError:
            pass  # already finished: it reported, or someone else got there first

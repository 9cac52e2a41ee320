"""Worker lifecycle on this orchestrator: launch, exits, stops, and the runtime facts.

`WorkerLifecycle` turns a claimed item into a running worker (a worker row with its
token, then the spawner), records the handle, and reacts when the worker ends:
a worker that exits without reporting had crashed, so its item is requeued (or
failed once its attempts are used up) exactly as a missed heartbeat would. It also
stops processes that no longer have anything to do: the item was cancelled, the
worker was killed through the API, or its lease went to someone else.

Every item transition goes through `WorkerManager.kill` and the queue's fenced
queries: the worker row is finished first (so its later calls get 409), then the
process is stopped. This module is the store for `lifecycle.sql`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.core.errors import ConflictError
from ai_factory.core.models import WorkAssignment
from ai_factory.core.models.workers import is_live
from ai_factory.orchestrator.events import RECONNECTED, EventHub
from ai_factory.orchestrator.queue import QueueManager
from ai_factory.orchestrator.spawners import Spawner, WorkerExit, WorkerHandle, WorkerLaunch
from ai_factory.orchestrator.workers import HeartbeatLeases, WorkerManager

log = logging.getLogger(__name__)

Q = load_queries("lifecycle")

HELD_ITEM = ("assigned", "running")
STOP_GRACE_S = 5.0  # SIGTERM (docker stop) before SIGKILL
EXIT_GRACE_S = 10.0  # a worker that reported its result gets this long to exit by itself
POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class WorkerState:
    """A worker row with what supervision needs: its handle, silence, its item's state."""

    row: dict[str, Any]

    @property
    def id(self) -> UUID:
        return self.row["id"]

    @property
    def active(self) -> bool:
        return is_live(self.row["status"], self.row["finished_at"])

    @property
    def holds_item(self) -> bool:
        """Its item is still claimed under this worker's lease."""
        return (
            self.row["item_status"] in HELD_ITEM
            and self.row["lease_token"] is not None
            and self.row["item_lease"] == self.row["lease_token"]
        )

    @property
    def silent_s(self) -> float:
        return self.row["silent_s"]

    @property
    def age_s(self) -> float:
        return self.row["age_s"]

    @property
    def handle(self) -> WorkerHandle:
        return WorkerHandle(
            worker_id=self.row["id"],
            spawner=self.row["spawner"],
            work_item_id=self.row["work_item_id"],
            pid=self.row["pid"],
            pid_start=self.row["pid_start"],
            spawn_host=self.row["spawn_host"],
            container_id=self.row["container_id"],
        )


class WorkerLifecycle:
    def __init__(
        self,
        *,
        db: Database,
        queue: QueueManager,
        workers: WorkerManager,
        spawner: Spawner,
        orchestrator_url: str,
        leases: HeartbeatLeases | None = None,
        spawn_retry_s: float = 30.0,
    ) -> None:
        self.db = db
        self.spawn_retry_s = spawn_retry_s
        self.queue = queue
        self.workers = workers
        self.spawner = spawner
        self.orchestrator_url = orchestrator_url
        self.leases = leases
        self._stopping: set[UUID] = set()
        self._settling: set[UUID] = set()
        self._background: set[asyncio.Task[None]] = set()

    # --- reads ---

    async def active(self) -> list[WorkerState]:
        return [WorkerState(r) for r in await self.db.fetch_all(Q["active"])]

    async def state(self, worker_id: UUID) -> WorkerState | None:
        row = await self.db.fetch_one(Q["get"], {"id": worker_id})
        return WorkerState(row) if row else None

    def owns(self, state: WorkerState) -> bool:
        """Whether this orchestrator's spawner can see and stop the worker."""
        return state.row["spawner"] == self.spawner.name and self.spawner.can_check(state.handle)

    # --- launch ---

    async def launch(self, assignment: WorkAssignment, *, worker_id: UUID) -> bool:
        """Start the worker for a claimed item; on failure give the item back. True if started."""
        item = assignment.item
        worker, token = await self.workers.create(
            assignment, worker_id=worker_id, spawner=self.spawner.name
        )
        if self.leases is not None:
            await self.leases.beat(worker.id)
        launch = WorkerLaunch(
            worker_id=worker.id,
            token=SecretStr(token),
            item=item,
            orchestrator_url=self.orchestrator_url,
            attempt=item.attempts,
        )
        try:
            handle = await self.spawner.spawn(launch)
        except Exception as exc:  # FactoryError, or an OSError around the spawn (log file ...)
            log.error("worker.spawn_failed worker=%s item=%s error=%s", worker.id, item.id, exc)
            # Not the item's fault (engine down, image gone, disk full): its attempt is given
            # back and it waits a while, so an outage does not fail the whole queue.
            await self._give_up(
                worker.id,
                f"could not start the worker: {exc}",
                refund_attempt=True,
                retry_in_s=self.spawn_retry_s,
            )
            return False
        await self.db.execute(
            Q["set_handle"],
            {
                "id": worker.id,
                "pid": handle.pid,
                "pid_start": handle.pid_start,
                "spawn_host": handle.spawn_host,
                "container_id": handle.container_id,
            },
        )
        log.info(
            "worker.spawned worker=%s item=%s attempt=%s %s",
            worker.id, item.id, item.attempts, handle.describe(),
        )  # fmt: skip
        return True

    # --- ends and stops ---

    async def handle_exit(self, ended: WorkerExit) -> None:
        """A spawned worker ended: if it never reported a result, it crashed."""
        await self.db.execute(Q["record_exit"], {"id": ended.worker_id, "exit_code": ended.exit_code})
        state = await self.state(ended.worker_id)
        if state is None or not state.active or ended.worker_id in self._stopping:
            return
        code = "an unknown code" if ended.exit_code is None else f"code {ended.exit_code}"
        await self._give_up(ended.worker_id, f"worker exited with {code} without reporting a result")

    async def retire(self, state: WorkerState, *, reason: str, refund_attempt: bool = False) -> None:
        """Finish a live worker: fence it off, hand its item back (or fail it), stop its process."""
        await self._give_up(state.id, reason, refund_attempt=refund_attempt)
        await self.stop(state)

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
        if (state.active and state.holds_item) or state.id in self._settling:
            return
        self._settling.add(state.id)
        try:
            urgent = state.row["status"] == "dead" or state.row["item_status"] in ("cancelled", None)
            if not urgent:
                await self._await_exit(state, EXIT_GRACE_S)
                state = await self.state(state.id) or state
                if state.active and state.holds_item:
                    return
            if state.active:
                await self._give_up(state.id, f"its work item is {state.row['item_status'] or 'gone'}")
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
        states = [await self.state(h.worker_id) for h in handles]
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
            await self.workers.kill(
                worker_id,
                reason=reason,
                requeue=True,
                refund_attempt=refund_attempt,
                retry_in_s=retry_in_s,
            )
        except ConflictError:
            pass  # already finished: it reported, or someone else got there first

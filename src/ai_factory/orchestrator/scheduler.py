"""The scheduler loop: claims queued items and starts their workers.

It wakes when an item changes status (a new item, or a worker finishing and freeing
capacity), announced by the event hub, and on a one-second tick as a backstop for
lost notifications. Each pass starts workers while the queue has something to
claim (checked first: an idle pass is one indexed read) and the rate limiter
allows a spawn: MAX_WORKERS counted from the database (live worker rows, not an
in-memory counter), budgets, cooldown, usage-limit pauses. Passes of all
orchestrators on one database take turns (a PostgreSQL advisory lock), so together
they never exceed MAX_WORKERS. A failing pass is logged and the
loop goes on. `pause()` stops claiming (graceful shutdown). Why it is woken rather than
polling: docs/design.md#scheduling-woken-not-polled.
"""

from __future__ import annotations

import asyncio
import logging

from ai_factory.core.waiting import wait_event
from ai_factory.orchestrator.events import RECONNECTED, EventHub, Subscription
from ai_factory.orchestrator.ledger import Ledger
from ai_factory.orchestrator.lifecycle import Launch, WorkerLifecycle
from ai_factory.orchestrator.spawn_limits import RateLimiter

log = logging.getLogger(__name__)

TICK_S = 1.0


class Scheduler:
    def __init__(
        self,
        *,
        ledger: Ledger,
        lifecycle: WorkerLifecycle,
        rate_limiter: RateLimiter,
        events: EventHub | None = None,
        tick_s: float = TICK_S,
    ) -> None:
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.rate_limiter = rate_limiter
        self.events = events
        self.tick_s = tick_s
        self.paused = False
        self._wake = asyncio.Event()

    def pause(self) -> None:
        """Claim nothing more (workers already running go on)."""
        self.paused = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        subscription = self.events.subscribe() if self.events is not None else None
        listener = asyncio.create_task(self._listen(subscription)) if subscription else None
        log.info("scheduler.started max_workers=%s tick_s=%s", self.rate_limiter.max_workers,
                 self.tick_s)  # fmt: skip
        try:
            while True:
                self._wake.clear()
                if not self.paused:
                    try:
                        await self.dispatch()
                    except Exception:  # a database blip or a bad item: log it, try again
                        log.exception("scheduler.pass_failed")
                await wait_event(self._wake, self.tick_s)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            if subscription is not None:
                subscription.close()

    async def dispatch(self) -> int:
        """Start as many workers as capacity and limits allow; return how many started.

        One pass at a time across every orchestrator on the database (an advisory lock):
        counting live workers and creating one must not interleave with another pass, or
        two orchestrators would each see room for the same last worker.
        """
        if not await self.ledger.has_claimable():
            return 0  # the common idle pass: one indexed read, no lock, no limiter queries
        async with self.ledger.dispatch_turn():
            return await self._dispatch_locked()

    async def _dispatch_locked(self) -> int:
        started = 0
        while not self.paused:
            limits = await self.rate_limiter.status()  # MAX_WORKERS among them
            if not limits.can_spawn:
                log.debug("scheduler.blocked by=%s", ",".join(limits.blocked_by))
                break
            launched = await self.lifecycle.launch_next()
            if launched is Launch.NOTHING:
                break
            if launched is Launch.STARTED:
                started += 1
            if not await self.ledger.has_claimable():
                break  # nothing left: spare the limiter's queries
        return started

    async def _listen(self, subscription: Subscription) -> None:
        async for event in subscription:
            if event.kind in ("status", RECONNECTED):
                self._wake.set()

"""Live factory events: one feed per process, fanned out to any number of subscribers.

Every row written to `work_item_events` (status changes by trigger, phases, iterations,
limits, lock conflicts) is announced with ``NOTIFY factory_events``. The `EventHub`
listens on one dedicated connection and hands typed `FactoryEvent`s to subscribers:

    async with hub.subscribe() as events:
        async for event in events:
            ...

With REDIS_URL set, a relay republishes the notifications on the Redis channel
``<REDIS_PREFIX>:events`` (one relay per database, elected with an advisory lock) and
the hub reads that channel instead, so processes without database access can follow
too. Both listeners reconnect on their own; after a gap a subscriber receives an
event of kind ``reconnected``: events may have been missed, re-read what matters.
Events are hints for low latency, never the source of truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Self
from uuid import UUID

import psycopg
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from ai_factory.core.models import WireModel

log = logging.getLogger(__name__)

CHANNEL = "factory_events"
RECONNECTED = "reconnected"
SUBSCRIBER_QUEUE = 1000
PING_EVERY_S = 15.0
PING_TIMEOUT_S = 5.0
BACKOFF_MAX_S = 5.0
RELAY_LOCK_KEY = 0x6576_6E74  # "evnt"


class FactoryEvent(WireModel):
    """One announced event (the NOTIFY payload). Full rows: GET /api/work/{id}/events."""

    id: int
    work_item_id: UUID | None = None
    kind: str
    from_status: str | None = None
    to_status: str | None = None


class Subscription:
    """A subscriber's bounded inbox; the oldest events are dropped if it falls behind."""

    def __init__(self, hub: EventHub, size: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[FactoryEvent] = asyncio.Queue(size)
        self.dropped = 0

    def put(self, event: FactoryEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> FactoryEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._hub._subscribers.discard(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> FactoryEvent:
        return await self.get()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(
        self, *, database_url: str, redis: aioredis.Redis | None = None, prefix: str = "factory"
    ) -> None:
        self.database_url = database_url
        self.redis = redis
        self.redis_channel = f"{prefix}:events"
        self.connected = asyncio.Event()
        self._subscribers: set[Subscription] = set()

    def subscribe(self, *, size: int = SUBSCRIBER_QUEUE) -> Subscription:
        subscription = Subscription(self, size)
        self._subscribers.add(subscription)
        return subscription

    async def run(self) -> None:
        """Feed subscribers until cancelled (Postgres LISTEN, or Redis plus the relay)."""
        if self.redis is None:
            async for event in self._postgres_events(elect=False):
                self._fan_out(event)
            return
        relay = asyncio.create_task(self._relay(), name="events-relay")
        try:
            await self._redis_events()
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)

    # --- sources ---

    async def _postgres_events(self, *, elect: bool) -> AsyncIterator[FactoryEvent]:
        """Notifications from PostgreSQL, reconnecting forever; `elect`: only while holding the relay lock."""
        backoff = 0.1
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, application_name="factory-events"
                ) as conn:
                    if elect and not await self._won_election(conn):
                        await asyncio.sleep(BACKOFF_MAX_S)
                        continue
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not elect:
                        self.connected.set()
                    if not first:
                        log.info("events.reconnected source=postgres")
                        yield FactoryEvent(id=0, kind=RECONNECTED)
                    first, backoff = False, 0.1
                    while True:
                        async for note in conn.notifies(timeout=PING_EVERY_S):
                            event = _parse(note.payload)
                            if event is not None:
                                yield event
                        # Quiet for a while: make sure the connection is not half-open.
                        async with asyncio.timeout(PING_TIMEOUT_S):
                            await conn.execute("SELECT 1")
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self.connected.clear()
                log.warning("events.listen_lost source=postgres error=%s", type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _won_election(self, conn: psycopg.AsyncConnection) -> bool:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _relay(self) -> None:
        assert self.redis is not None
        async for event in self._postgres_events(elect=True):
            try:
                await self.redis.publish(self.redis_channel, event.model_dump_json(by_alias=True))
            except (RedisError, OSError) as exc:
                log.warning("events.publish_failed error=%s", type(exc).__name__)

    async def _redis_events(self) -> None:
        assert self.redis is not None
        backoff = 0.1
        first = True
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.redis_channel)
                self.connected.set()
                if not first:
                    log.info("events.reconnected source=redis")
                    self._fan_out(FactoryEvent(id=0, kind=RECONNECTED))
                first, backoff = False, 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=PING_EVERY_S)
                    if message is None:
                        async with asyncio.timeout(PING_TIMEOUT_S):
                            await pubsub.ping()
                        continue
                    event = _parse(message["data"])
                    if event is not None:
                        self._fan_out(event)
            except (RedisError, OSError, TimeoutError) as exc:
                self.connected.clear()
                log.warning("events.listen_lost source=redis error=%s", type(exc).__name__)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _fan_out(self, event: FactoryEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.put(event)


def _parse(payload: str | bytes) -> FactoryEvent | None:
    try:
        return FactoryEvent.model_validate_json(payload)
    except ValidationError:
        log.warning("events.bad_payload payload=%r", payload[:200])
        return None

"""The live event feed: Postgres LISTEN, the Redis relay, reconnection, and Redis leases."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
import redis.asyncio as aioredis

from ai_factory.core.db.database import Database
from ai_factory.core.models import CreateWorkItemInput
from ai_factory.orchestrator.events import (
    RECONNECTED,
    RELAY_LOCK_KEY,
    EventHub,
    FactoryEvent,
    Subscription,
)
from ai_factory.orchestrator.queue import QueueManager
from tests.support.ledger import queue_on
from tests.support.polling import wait_for
from tests.support.running_factory import spec

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def running(hub: EventHub) -> asyncio.Task[None]:
    task = asyncio.create_task(hub.run())
    await asyncio.wait_for(hub.connected.wait(), 30)
    return task


async def next_event(feed: Subscription, *, kind: str | None = None, timeout: float = 30) -> FactoryEvent:
    async def wanted() -> FactoryEvent:
        while True:
            event = await feed.get()
            if kind is None or event.kind == kind:
                return event

    return await asyncio.wait_for(wanted(), timeout)


async def submit(queue: QueueManager) -> uuid.UUID:
    item, _ = await queue.add(CreateWorkItemInput(repo="https://git.example/srv/w.git", spec="# t\n"))
    return item.id


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_subscribers_get_typed_events_from_postgres_and_survive_a_dropped_connection(
    db: Database, database_url: str
) -> None:
    hub = EventHub(database_url=database_url)
    task = await running(hub)
    queue = queue_on(db)
    try:
        async with hub.subscribe() as feed, hub.subscribe() as second:
            item_id = await submit(queue)
            event = await next_event(feed)
            assert isinstance(event, FactoryEvent)
            assert (event.work_item_id, event.kind, event.from_status, event.to_status) == (
                item_id, "status", None, "queued",
            )  # fmt: skip
            assert (await next_event(second)).id == event.id  # every subscriber gets every event

            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'factory-events' AND datname = current_database()"
            )
            assert (await next_event(feed, kind=RECONNECTED)).id == 0
            later = await submit(queue)
            assert (await next_event(feed, kind="status")).work_item_id == later
    finally:
        await stop(task)
    assert not hub._subscribers  # closed subscriptions are forgotten


async def test_with_redis_events_are_relayed_on_the_redis_channel(
    db: Database, database_url: str, redis_client: aioredis.Redis
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    raw = redis_client.pubsub()
    await raw.subscribe(f"{prefix}:events")
    hub = EventHub(database_url=database_url, redis=redis_client, prefix=prefix)
    task = await running(hub)
    try:
        async with hub.subscribe() as feed:
            # The relay connects on its own; submit until its first event comes through.
            async def relayed() -> FactoryEvent:
                while True:
                    await submit(queue_on(db))
                    try:
                        return await next_event(feed, kind="status", timeout=1)
                    except TimeoutError:
                        continue

            event = await asyncio.wait_for(relayed(), 30)
            assert event.to_status == "queued"
            message = None
            while message is None:
                message = await raw.get_message(ignore_subscribe_messages=True, timeout=5)
            assert json.loads(message["data"])["kind"] == "status"
    finally:
        await stop(task)
        await raw.aclose()


async def test_only_one_relay_publishes_per_database(database_url: str, redis_client: aioredis.Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    hubs = [EventHub(database_url=database_url, redis=redis_client, prefix=prefix) for _ in range(2)]
    tasks = [await running(h) for h in hubs]
    try:
        def relays() -> int:
            with psycopg.connect(database_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                    " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
                    " AND l.objid = %s AND l.granted",
                    (RELAY_LOCK_KEY,),
                ).fetchone()
            return row[0] if row else 0

        assert await asyncio.to_thread(wait_for, relays, what="a relay to be elected") == 1
        await asyncio.sleep(0.5)  # the other hub keeps trying; it must not get the lock too
        assert await asyncio.to_thread(relays) == 1
    finally:
        for task in tasks:
            await stop(task)


def test_with_redis_the_factory_runs_items_and_heartbeats_hold_redis_leases(start_factory) -> None:
    import redis

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    factory = start_factory(redis_url=REDIS_URL, redis_prefix=prefix)
    item = factory.submit(spec(mode="forever"))
    worker = factory.running_worker(item["id"])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{prefix}:heartbeat:{worker['id']}"
        assert wait_for(lambda: client.pttl(key) > 0, what="the worker's heartbeat lease in Redis")
        factory.http.post(f"/api/work/{item['id']}/cancel")
        done = factory.submit(spec(seconds=0))
        assert factory.wait_status(done["id"], "completed", "failed")["status"] == "completed"
    finally:
        client.close()

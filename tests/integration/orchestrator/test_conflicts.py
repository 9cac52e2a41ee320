"""One contract, two lock backends (PostgreSQL and Redis), real servers."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ai_factory.core.db.database import Database
from ai_factory.core.errors import InvalidInputError
from ai_factory.orchestrator.conflicts import (
    ConflictDetector,
    PostgresConflictDetector,
    RedisConflictDetector,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
REPO = "https://github.com/acme/widgets.git"


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def make_detector(kind: str, db: Database, redis_client: aioredis.Redis, ttl_s: float) -> ConflictDetector:
    if kind == "postgres":
        return PostgresConflictDetector(db=db, ttl_s=ttl_s)
    return RedisConflictDetector(redis=redis_client, prefix=f"test-{uuid.uuid4().hex[:8]}", ttl_s=ttl_s)


@pytest.fixture(params=["postgres", "redis"])
async def locks(request, db: Database, redis_client: aioredis.Redis) -> AsyncIterator[ConflictDetector]:
    detector = await make_detector(request.param, db, redis_client, ttl_s=60)
    yield detector
    if isinstance(detector, RedisConflictDetector):
        async for key in redis_client.scan_iter(match=f"{detector.tag}*"):
            await redis_client.delete(key)


async def test_acquire_is_all_or_nothing(locks: ConflictDetector) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert (await locks.acquire(a, REPO, ["src/x.py", "src/y.py"])).acquired == ["src/x.py", "src/y.py"]
    denied = await locks.acquire(b, REPO, ["src/y.py", "src/z.py"])
    assert denied.acquired == [] and denied.conflicts == ["src/y.py"]
    # z.py was not taken by the refused call
    assert (await locks.acquire(a, REPO, ["src/z.py"])).acquired == ["src/z.py"]
    assert await locks.holders(REPO) == {"src/x.py": a, "src/y.py": a, "src/z.py": a}


async def test_reacquiring_your_own_lock_succeeds(locks: ConflictDetector) -> None:
    a = uuid.uuid4()
    await locks.acquire(a, REPO, ["a.py"])
    assert (await locks.acquire(a, REPO, ["a.py", "b.py"])).conflicts == []


async def test_keys_are_scoped_by_repository(locks: ConflictDetector) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(a, REPO, ["README.md"])
    assert (await locks.acquire(b, "https://git.example/srv/other.git", ["README.md"])).acquired == ["README.md"]


async def test_release_by_a_non_holder_is_refused(locks: ConflictDetector) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(a, REPO, ["m.py", "n.py"])
    assert await locks.release(b, REPO, ["m.py"]) == []
    assert (await locks.acquire(b, REPO, ["m.py"])).conflicts == ["m.py"]
    assert await locks.release(a, REPO, ["m.py"]) == ["m.py"]
    assert (await locks.acquire(b, REPO, ["m.py"])).acquired == ["m.py"]


async def test_release_all_frees_only_the_workers_own_locks(locks: ConflictDetector) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(a, REPO, ["1.py", "2.py"])
    await locks.acquire(a, "https://git.example/srv/other.git", ["3.py"])
    await locks.acquire(b, REPO, ["4.py"])
    assert await locks.release_all(a) == 3
    assert await locks.holders(REPO) == {"4.py": b}
    assert await locks.holders("https://git.example/srv/other.git") == {}


async def test_paths_are_normalised_and_escapes_refused(locks: ConflictDetector) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(a, REPO, ["./src//app.py"])
    assert (await locks.acquire(b, REPO, ["src/app.py"])).conflicts == ["src/app.py"]
    for bad in ("/etc/passwd", "../outside", "src/../../x"):
        with pytest.raises(InvalidInputError):
            await locks.acquire(a, REPO, [bad])


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_ttl_expiry_frees_a_dead_workers_locks(kind: str, db: Database, redis_client: aioredis.Redis) -> None:
    locks = await make_detector(kind, db, redis_client, ttl_s=0.5)
    dead, alive = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(dead, REPO, ["f.py"])
    assert (await locks.acquire(alive, REPO, ["f.py"])).conflicts == ["f.py"]
    await asyncio.sleep(1.2)
    assert (await locks.acquire(alive, REPO, ["f.py"])).acquired == ["f.py"]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_renew_keeps_a_live_workers_locks(kind: str, db: Database, redis_client: aioredis.Redis) -> None:
    locks = await make_detector(kind, db, redis_client, ttl_s=1.0)
    live, other = uuid.uuid4(), uuid.uuid4()
    await locks.acquire(live, REPO, ["g.py"])
    for _ in range(4):
        await asyncio.sleep(0.4)
        await locks.renew(live)
    assert (await locks.acquire(other, REPO, ["g.py"])).conflicts == ["g.py"]


async def test_fifty_concurrent_workers_never_share_a_file(locks: ConflictDetector) -> None:
    files = [f"src/module_{i}.py" for i in range(12)]
    holders: dict[str, uuid.UUID] = {}
    violations: list[str] = []
    grants = 0
    rng = random.Random(7)

    async def worker() -> None:
        nonlocal grants
        me = uuid.uuid4()
        for _ in range(6):
            wanted = rng.sample(files, rng.randint(1, 4))
            result = await locks.acquire(me, REPO, wanted)
            if not result.acquired:
                await asyncio.sleep(rng.random() * 0.01)
                continue
            grants += 1
            for f in result.acquired:
                if f in holders:
                    violations.append(f"{f} held by {holders[f]} and {me}")
                holders[f] = me
            await asyncio.sleep(rng.random() * 0.005)
            for f in result.acquired:
                holders.pop(f, None)
            assert sorted(await locks.release(me, REPO, result.acquired)) == sorted(result.acquired)

    await asyncio.gather(*(worker() for _ in range(50)))
    assert violations == []
    assert grants > 0
    assert await locks.holders(REPO) == {}

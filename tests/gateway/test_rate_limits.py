"""A key's rate limit holds across replicas sharing one database, and callers inventing key
ids can grow neither memory nor database reads."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gateway.auth import CACHE_MISSES, KeyStore
from gateway.ratelimit import SharedRateLimiter
from gateway.storage.database import Database
from repairs_gateway_sdk.errors import RateLimited, Unauthorized


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0 + 5  # 5 s into a minute

    def __call__(self) -> float:
        return self.t


async def _database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


async def test_three_replicas_hold_a_keys_allowance_together(database_url: str) -> None:
    dbs = [await _database(database_url) for _ in range(3)]  # three processes' own pools
    clock = Clock()
    replicas = [SharedRateLimiter(db, clock=clock) for db in dbs]
    try:
        for limit in (120, 1000):
            key, accepted = f"k{limit}", 0
            # a client far over its allowance, spread round robin over the replicas
            for n in range(limit * 3):
                try:
                    await replicas[n % 3].take(key, limit)
                    accepted += 1
                except RateLimited as exc:
                    assert 1 <= exc.retry_after <= 55
            # never more than the allowance; refused early by at most what leases still hold
            assert limit * 0.97 <= accepted <= limit, (limit, accepted)
        clock.t += 60  # the next minute: allowed again
        await replicas[0].take("k120", 120)
    finally:
        for db in dbs:
            await db.dispose()


async def test_a_replica_that_cannot_reach_the_database_counts_on_its_own(
    tmp_path: Path,
) -> None:
    db = await _database(f"sqlite:///{tmp_path}/rl.db")
    limiter = SharedRateLimiter(db, clock=Clock())
    await db.dispose()
    db.engine = None  # type: ignore[assignment]  # every lease now fails
    for _ in range(5):
        await limiter.take("k", 5)
    with pytest.raises(RateLimited):
        await limiter.take("k", 5)


async def test_invented_key_ids_are_bounded_in_memory_and_reads(tmp_path: Path) -> None:
    db = await _database(f"sqlite:///{tmp_path}/keys.db")
    store = KeyStore(db)
    reads = 0
    lookup = store._lookup

    async def counting(key_id: str):  # type: ignore[no-untyped-def]
        nonlocal reads
        if key_id not in store._misses:
            reads += 1
        return await lookup(key_id)

    store._lookup = counting  # type: ignore[method-assign]
    try:
        for _ in range(3 * CACHE_MISSES):
            with pytest.raises(Unauthorized):
                await store.authenticate(f"rgw_{secrets.token_hex(6)}_{secrets.token_hex(8)}")
        assert len(store._misses) <= CACHE_MISSES and len(store._cache) == 0
        reads = 0
        for _ in range(100):  # the same invented id again and again: one read, then cached
            with pytest.raises(Unauthorized):
                await store.authenticate("rgw_abcdef123456_nope")
        assert reads == 1
        for bad in ("rgw_" + "x" * 500 + "_s", "rgw_a b_s", "rgw_\u00e9_s"):
            with pytest.raises(Unauthorized):
                await store.authenticate(bad)
        assert len(store._misses) <= CACHE_MISSES
    finally:
        await db.dispose()

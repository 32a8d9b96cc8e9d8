"""The outbox worker: backoff, dead letters, replay, and no double delivery across processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from gateway.outbox import OutboxWorker, enqueue, list_items, replay
from gateway.storage.database import Database
from gateway.storage.models import OutboxItem
from repairs_gateway_sdk.errors import BackendRejected, BackendUnavailable
from repairs_gateway_sdk.timeutil import now


async def make_db(url: str) -> Database:
    db = Database(url)
    await asyncio.to_thread(db.migrate)
    return db


async def test_two_workers_never_deliver_an_item_twice(database_url: str) -> None:
    db_a, db_b = await make_db(database_url), Database(database_url)
    async with db_a.transaction() as s:
        for i in range(120):
            enqueue(s, "demo", "test.effect", {"n": i})
    delivered: Counter[int] = Counter()

    async def handler(item: OutboxItem) -> None:
        delivered[item.payload["n"]] += 1
        await asyncio.sleep(0.002)  # hold the claim while the other worker looks

    workers = [OutboxWorker(db, batch=40) for db in (db_a, db_b, db_a, db_b)]
    for w in workers:
        w.register("test.effect", handler)
    await asyncio.gather(*(w.drain(60) for w in workers))
    assert sorted(delivered) == list(range(120))
    assert set(delivered.values()) == {1}, [n for n, c in delivered.items() if c > 1]
    states = Counter(i.state for i in await list_items(db_a, limit=500))
    assert states == {"done": 120}
    await db_a.dispose()
    await db_b.dispose()


async def test_failures_back_off_then_dead_letter_then_replay(tmp_path: Path) -> None:
    db = await make_db(f"sqlite:///{tmp_path / 'o.db'}")
    async with db.transaction() as s:
        enqueue(s, "demo", "flaky", {"reference": "A"})
        enqueue(s, "demo", "refused", {"reference": "B"})
    calls: Counter[str] = Counter()
    healthy = False

    async def flaky(item: OutboxItem) -> None:
        calls["flaky"] += 1
        if not healthy:
            raise BackendUnavailable("down")

    async def refused(item: OutboxItem) -> None:
        calls["refused"] += 1
        raise BackendRejected("never")

    worker = OutboxWorker(db, max_attempts=4)
    worker.register("flaky", flaky)
    worker.register("refused", refused)
    for _ in range(6):
        await worker.run_once()
        async with db.transaction() as s:  # make everything due now: no sleeping in tests
            await s.execute(update(OutboxItem).values(next_attempt_at=now()))
    async with db.session() as s:
        items = {i.payload["reference"]: i for i in (await s.execute(select(OutboxItem))).scalars()}
    assert items["A"].state == "dead" and items["A"].attempts == 4
    assert items["B"].state == "dead" and calls["refused"] == 3  # a refusal gives up sooner
    assert "BackendUnavailable" in (items["A"].last_error or "")
    healthy = True
    assert await replay(db, [items["A"].id]) == 1
    await worker.drain()
    async with db.session() as s:
        a = await s.get(OutboxItem, items["A"].id)
    assert a is not None and a.state == "done"
    await db.dispose()


async def test_a_delivery_that_outlived_its_claim_leaves_the_new_claim_alone(
    tmp_path: Path,
) -> None:
    """A delivery slower than its claim (LOCK_SECONDS) may see the item claimed again by
    another worker: when it ends, it records nothing over that worker's claim, which
    delivers and records the outcome itself (at least once, never a lost item)."""
    db = await make_db(f"sqlite:///{tmp_path / 'o.db'}")
    async with db.transaction() as s:
        enqueue(s, "demo", "slow", {"n": 1})
    slow, other = OutboxWorker(db), OutboxWorker(db)
    seen: list[str] = []

    async def taken_over(item: OutboxItem) -> None:
        seen.append(item.locked_by or "")
        async with db.transaction() as s:  # meanwhile the claim expired and another took it
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item.id)
                .values(locked_by=other.worker_id, locked_until=now() + timedelta(seconds=60))
            )

    slow.register("slow", taken_over)
    assert await slow.run_once() == 1
    (item,) = await list_items(db, limit=5)
    assert seen == [slow.worker_id]
    assert item.state == "pending" and item.locked_by == other.worker_id  # not marked done
    assert item.done_at is None
    await db.dispose()

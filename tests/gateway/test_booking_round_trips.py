"""The booking's few statements (issue 16): the idempotency record claimed by one INSERT, the
confirmation as a conditional UPDATE, and the SQLite driver that makes a statement one thread
hop. What a resident sees must not change: a retry answers as the first request did, even when
the request would now be refused; a booking settled by the reconciler first is answered from
the row."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, select, text
from sqlalchemy.exc import IntegrityError

from gateway.storage.database import Database
from gateway.storage.models import IdempotencyRecord, OutboxItem, Repair
from tests.gatewaykit import demo_council, running_gateway

BASE = "/v1/councils/demo"


def booking(slot_token: str) -> dict[str, object]:
    return {
        "property_id": "00012345",
        "sor_code": "N631111",
        "description": "Shower hose split",
        "contact": {"phone": "07700 900123"},
        "slot_token": slot_token,
    }


async def first_slot(client) -> dict[str, object]:  # type: ignore[no-untyped-def]
    q = {"property_id": "00012345", "sor_code": "N631111", "page_size": 1}
    r = await client.get(f"{BASE}/appointments", params=q)
    assert r.status_code == 200, r.text
    return r.json()["slots"][0]  # type: ignore[no-any-return]


async def test_a_booking_leaves_its_answer_and_no_reconcile_item(
    tmp_path: Path, database_url: str
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files, database_url=database_url) as gw:
        slot = await first_slot(gw.client)
        r = await gw.client.post(
            f"{BASE}/repairs",
            json=booking(str(slot["slot_token"])),
            headers={"Idempotency-Key": "a"},
        )
        assert r.status_code == 201, r.text
        ref = r.json()["reference"]
        async with gw.database.session() as s:
            rec = (await s.execute(select(IdempotencyRecord))).scalar_one()
            row = (await s.execute(select(Repair))).scalar_one()
            reconcile = (
                await s.execute(select(OutboxItem).where(OutboxItem.kind == "booking.reconcile"))
            ).all()
        assert (rec.state, rec.response_status, rec.repair_reference) == ("done", 201, ref)
        assert rec.response_body == r.json()
        assert row.status == "booked" and row.slot_start is not None
        assert row.vendor_slot is not None and row.contact == {"phone": "07700 900123"}
        assert reconcile == []  # dropped by its id with the confirmation


async def test_a_retry_is_answered_as_the_first_even_when_it_would_now_be_refused(
    tmp_path: Path,
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files) as gw:
        slot = await first_slot(gw.client)
        body = booking(str(slot["slot_token"]))
        first = await gw.client.post(f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "b"})
        assert first.status_code == 201, first.text
        # the scheduler's circuit opens: a new booking is refused before anything is written...
        breaker = gw.runtime.gateway.council("demo").breaker("demo_csv", "bookings")
        for _ in range(breaker.threshold):
            breaker.failure()
        other = await gw.client.post(f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "c"})
        assert other.status_code == 503, other.text
        # ... but the retry of the first is its answer, as before
        again = await gw.client.post(f"{BASE}/repairs", json=body, headers={"Idempotency-Key": "b"})
        assert (again.status_code, again.json()) == (201, first.json())


async def test_a_booking_the_reconciler_confirmed_first_is_answered_from_the_row(
    tmp_path: Path, database_url: str
) -> None:
    council, files = demo_council()
    async with running_gateway(tmp_path, {"demo": council}, files, database_url=database_url) as gw:
        scheduler = gw.runtime.gateway.council("demo").scheduler("demo_csv")
        book = scheduler.book

        async def book_then_reconciled(order):  # type: ignore[no-untyped-def]
            conf = await book(order)
            async with gw.database.transaction() as s:  # as the reconciler does, first
                row = (
                    await s.execute(select(Repair).where(Repair.reference == order.reference))
                ).scalar_one()
                row.status, row.slot_start, row.slot_end = "booked", conf.start, conf.end
                row.slot_label = conf.label
            return conf

        scheduler.book = book_then_reconciled  # type: ignore[method-assign]
        try:
            slot = await first_slot(gw.client)
            r = await gw.client.post(
                f"{BASE}/repairs",
                json=booking(str(slot["slot_token"])),
                headers={"Idempotency-Key": "d"},
            )
        finally:
            scheduler.book = book  # type: ignore[method-assign]
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "booked"


# -- the SQLite driver ------------------------------------------------------------------------
META = MetaData()
THINGS = Table(
    "things",
    META,
    Column("id", Integer, primary_key=True),
    Column("name", String(16), unique=True),
    Column("n", Integer),
)


@pytest.fixture
async def sqlite_db(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    yield db
    await db.dispose()


async def test_the_driver_keeps_what_sqlalchemy_reads_from_a_cursor(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        r = await s.execute(THINGS.insert().values(name="a", n=1))
        assert r.inserted_primary_key == (1,)
        got = await s.execute(THINGS.insert().returning(THINGS.c.id), {"name": "b", "n": 2})
        assert got.scalar_one() == 2
        await s.execute(THINGS.insert(), [{"name": "c", "n": 3}, {"name": "d", "n": 4}])
        changed = await s.execute(THINGS.update().where(THINGS.c.n >= 2).values(n=0))
        assert changed.rowcount == 3  # type: ignore[attr-defined]
    async with sqlite_db.session() as s:
        rows = (await s.execute(select(THINGS.c.name, THINGS.c.n).order_by(THINGS.c.id))).all()
    assert [tuple(x) for x in rows] == [("a", 1), ("b", 0), ("c", 0), ("d", 0)]
    with pytest.raises(IntegrityError):  # the DB-API's errors, as SQLAlchemy maps them
        async with sqlite_db.transaction() as s:
            await s.execute(THINGS.insert().values(name="a", n=9))


async def test_a_failed_transaction_leaves_nothing_and_writers_take_turns(
    sqlite_db: Database,
) -> None:
    with pytest.raises(RuntimeError):
        async with sqlite_db.transaction() as s:
            await s.execute(THINGS.insert().values(name="x", n=1))
            raise RuntimeError("changed my mind")

    async def bump() -> None:
        async with sqlite_db.transaction() as s:  # BEGIN IMMEDIATE: read-then-write is safe
            n = (await s.execute(select(THINGS.c.n).where(THINGS.c.name == "k"))).scalar()
            await s.execute(THINGS.update().where(THINGS.c.name == "k").values(n=(n or 0) + 1))

    async with sqlite_db.transaction() as s:
        await s.execute(THINGS.insert().values(name="k", n=0))
    await asyncio.gather(*(bump() for _ in range(8)))
    async with sqlite_db.session() as s:
        assert (await s.execute(select(THINGS.c.n).where(THINGS.c.name == "k"))).scalar() == 8
        assert (await s.execute(select(THINGS.c.id).where(THINGS.c.name == "x"))).all() == []


async def test_a_statement_cancelled_mid_hop_does_not_keep_the_write_lock(
    sqlite_db: Database,
) -> None:
    def slow(_: object) -> int:
        time.sleep(0.3)
        return 1

    @event.listens_for(sqlite_db.engine.sync_engine, "connect")
    def _slow_function(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.create_function("slow", 1, slow)

    await sqlite_db.engine.dispose()  # new connections get the function

    async def held() -> None:
        async with sqlite_db.transaction() as s:
            await s.execute(THINGS.insert().values(name="y", n=1))
            await s.execute(text("SELECT slow(1)"))

    task = asyncio.create_task(held())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def write() -> None:
        async with sqlite_db.transaction() as s:
            await s.execute(THINGS.insert().values(name="z", n=1))

    await asyncio.wait_for(write(), 10)  # the cancelled transaction was rolled back
    async with sqlite_db.session() as s:
        names = (await s.execute(select(THINGS.c.name))).scalars().all()
    assert names == ["z"]


# -- a transaction in one go (Database.write) ----------------------------------------------------
@pytest.fixture
async def any_db(database_url: str):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    yield db
    await db.dispose()


def _insert(name: str, n: int = 1):  # type: ignore[no-untyped-def]
    def statements(conn):  # type: ignore[no-untyped-def]
        got = conn.execute(THINGS.insert().returning(THINGS.c.id), {"name": name, "n": n})
        return got.scalar_one()

    return statements


async def test_a_write_commits_its_answer_or_leaves_nothing(any_db: Database) -> None:
    assert await any_db.write(_insert("a")) == 1

    def then_fails(conn):  # type: ignore[no-untyped-def]
        conn.execute(THINGS.insert().values(name="b", n=1))
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await any_db.write(then_fails)
    with pytest.raises(IntegrityError):  # the DB-API's errors, as SQLAlchemy maps them
        await any_db.write(_insert("a"))
    assert await any_db.write(_insert("c")) > 1  # the connection is usable after both
    async with any_db.session() as s:
        names = (await s.execute(select(THINGS.c.name).order_by(THINGS.c.id))).scalars().all()
    assert names == ["a", "c"]


async def test_writes_and_sessions_take_turns(any_db: Database) -> None:
    async with any_db.transaction() as s:
        await s.execute(THINGS.insert().values(name="k", n=0))

    def bump_in_one_go(conn):  # type: ignore[no-untyped-def]
        n = conn.execute(select(THINGS.c.n).where(THINGS.c.name == "k")).scalar()
        conn.execute(THINGS.update().where(THINGS.c.name == "k").values(n=n + 1))

    async def bump_in_a_session() -> None:
        async with any_db.transaction() as s:
            n = (await s.execute(select(THINGS.c.n).where(THINGS.c.name == "k"))).scalar()
            await s.execute(THINGS.update().where(THINGS.c.name == "k").values(n=n + 1))

    if not any_db.is_sqlite:  # read-then-write needs the row lock there
        bump = bump_in_one_go

        def bump_in_one_go(conn):  # type: ignore[no-untyped-def]
            conn.execute(select(THINGS.c.id).where(THINGS.c.name == "k").with_for_update())
            bump(conn)

        async def bump_in_a_session() -> None:
            async with any_db.transaction() as s:
                q = select(THINGS.c.n).where(THINGS.c.name == "k").with_for_update()
                n = (await s.execute(q)).scalar()
                await s.execute(THINGS.update().where(THINGS.c.name == "k").values(n=n + 1))

    await asyncio.gather(
        *(any_db.write(bump_in_one_go) for _ in range(8)), *(bump_in_a_session() for _ in range(8))
    )
    async with any_db.session() as s:
        assert (await s.execute(select(THINGS.c.n).where(THINGS.c.name == "k"))).scalar() == 16


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each hand-off to a SQLite connection's thread: a statement's, commit's or rollback's
    (aiosqlite's _execute) or a whole function's (run_on_thread)."""
    import aiosqlite.core

    from gateway.storage.sqlite_driver import OneHopConnection

    seen: list[str] = []
    execute = aiosqlite.core.Connection._execute
    run_on_thread = OneHopConnection.run_on_thread

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append("statement")
        return await execute(self, fn, *args, **kwargs)

    async def counted_run(self, fn):  # type: ignore[no-untyped-def]
        seen.append("function")
        return await run_on_thread(self, fn)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    monkeypatch.setattr(OneHopConnection, "run_on_thread", counted_run)
    return seen


def _on_the_thread_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As when SQLite's write lock is taken: every write is handed over to the thread."""
    from gateway.storage.sqlite_driver import OneHopConnection

    monkeypatch.setattr(OneHopConnection, "run_here", lambda self, fn, busy: (False, None))


@pytest.mark.parametrize("lock", ["free", "taken", "free, background"])
async def test_a_write_on_sqlite_is_here_or_one_hand_off_with_its_statements_seen(
    sqlite_db: Database, hops: list[str], monkeypatch: pytest.MonkeyPatch, lock: str
) -> None:
    import contextvars

    if lock == "taken":
        _on_the_thread_only(monkeypatch)
    await sqlite_db.write(_insert("warm"))  # the kept connection opened (its set-up hops)
    where = contextvars.ContextVar("where", default="")
    seen: list[tuple[str, str]] = []

    @event.listens_for(sqlite_db.engine.sync_engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        seen.append((statement.split()[0], where.get()))

    loop_thread = threading.get_ident()
    threads: list[int] = []

    def three(conn):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        conn.execute(THINGS.insert().values(name="x", n=1))
        conn.execute(THINGS.update().values(n=2))
        return conn.execute(select(THINGS.c.n).where(THINGS.c.name == "x")).scalar_one()

    where.set("request")
    hops.clear()
    # background work (statistics, outbox bookkeeping) is handed over even with the lock free
    assert await sqlite_db.write(three, background=lock.endswith("background")) == 2
    if lock == "free":  # BEGIN IMMEDIATE, three statements and COMMIT here, on the loop
        assert hops == [] and threads == [loop_thread]
    else:  # ... or in one hand-off to the connection's thread
        assert hops == ["function"] and threads[0] != loop_thread
    assert seen == [("INSERT", "request"), ("UPDATE", "request"), ("SELECT", "request")]
    async with sqlite_db.session() as s:  # committed, and the pool's connection is clean
        assert (await s.execute(select(THINGS.c.n).where(THINGS.c.name == "x"))).scalar() == 2


async def test_a_write_waits_on_the_thread_while_another_writer_holds_the_lock(
    sqlite_db: Database, hops: list[str]
) -> None:
    await sqlite_db.write(_insert("warm"))
    hops.clear()
    async with sqlite_db.transaction() as s:  # another connection takes the write lock
        await s.execute(THINGS.insert().values(name="first", n=1))
        hops.clear()
        waiting = asyncio.create_task(sqlite_db.write(_insert("second")))
        await asyncio.sleep(0.2)
        assert not waiting.done() and hops == ["function"]  # handed over, waiting there
    assert await asyncio.wait_for(waiting, 10) == 3
    async with sqlite_db.session() as s:
        names = (await s.execute(select(THINGS.c.name).order_by(THINGS.c.id))).scalars().all()
    assert names == ["warm", "first", "second"]
    hops.clear()
    await sqlite_db.write(_insert("third"))  # the lock is free again: here
    assert hops == []


async def test_every_so_many_writes_the_wal_is_checkpointed_while_writes_go_on(
    sqlite_db: Database, hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every CHECKPOINT_EVERY-th write sets off a checkpoint (the WAL copied back into the
    database file: two fsyncs) on a thread and connection of its own: no write waits for
    it, not the one that set it off, nor those after it while it runs."""
    import sqlite3

    from gateway.storage import database

    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 4)
    release = threading.Event()
    ran: list[tuple[int, int, int]] = []
    connect = sqlite3.connect

    class Held:  # a checkpoint that takes as long as the test holds it
        def __init__(self, path: str, **kw: object) -> None:
            self.conn = connect(path, **kw)  # type: ignore[arg-type]

        def execute(self, sql: str) -> sqlite3.Cursor:
            assert release.wait(10)
            cursor = self.conn.execute(sql)
            ran.append(cursor.fetchone())
            return cursor

        def close(self) -> None:
            self.conn.close()

    monkeypatch.setattr(database.sqlite3, "connect", Held)
    await sqlite_db.write(_insert("warm"))
    hops.clear()
    for i in range(8):  # writes 4 and 8 would checkpoint; the first is held throughout
        await asyncio.wait_for(sqlite_db.write(_insert(f"w{i}")), 5)
    assert hops == [] and ran == []  # every write on the loop; the checkpoint still held
    release.set()
    await sqlite_db.dispose()  # waits for it
    busy, wal_frames, copied = ran[0]
    assert len(ran) == 1 and busy == 0 and copied == wal_frames > 0
    monkeypatch.undo()  # sqlite3.connect as it was, for the look below
    async with sqlite_db.session() as s:
        assert len((await s.execute(select(THINGS.c.id))).all()) == 9


async def test_a_checkpoint_cancelled_before_it_ran_does_not_stop_the_next(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A loop shutting down cancels a checkpoint task before its first step.) The next
    CHECKPOINT_EVERY-th write still sets one off: the WAL is never left to grow for good."""
    from gateway.storage import database

    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 2)
    await sqlite_db.write(_insert("a"))
    await sqlite_db.write(_insert("b"))  # the 2nd: a checkpoint set off
    first = sqlite_db._checkpoint
    assert first is not None
    first.cancel()  # before it has run at all
    await asyncio.wait([first])
    await sqlite_db.write(_insert("c"))
    await sqlite_db.write(_insert("d"))  # the 4th: another
    again = sqlite_db._checkpoint
    assert again is not None and again is not first
    await asyncio.wait([again])
    assert again.done() and not again.cancelled()


async def test_a_cancelled_write_finishes_before_the_next_one(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_the_thread_only(monkeypatch)
    started = threading.Event()

    def slow(conn):  # type: ignore[no-untyped-def]
        conn.execute(THINGS.insert().values(name="slow", n=1))
        started.set()
        time.sleep(0.3)
        conn.execute(THINGS.update().values(n=2))

    task = asyncio.create_task(sqlite_db.write(slow))
    assert await asyncio.to_thread(started.wait, 5)
    task.cancel()
    t0 = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 > 0.15  # it waited for the transaction on the thread
    assert await asyncio.wait_for(sqlite_db.write(_insert("after")), 10) == 2  # no lock kept
    async with sqlite_db.session() as s:
        rows = (await s.execute(select(THINGS.c.name, THINGS.c.n).order_by(THINGS.c.id))).all()
    # the transaction it had handed over could not be stopped: it ran to its commit
    assert [tuple(x) for x in rows] == [("slow", 2), ("after", 1)]


async def test_a_write_cancelled_before_it_started_is_skipped(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_the_thread_only(monkeypatch)
    started, release = threading.Event(), threading.Event()

    def held(conn):  # type: ignore[no-untyped-def]
        conn.execute(THINGS.insert().values(name="held", n=1))
        started.set()
        assert release.wait(5)

    first = asyncio.create_task(sqlite_db.write(held))
    assert await asyncio.to_thread(started.wait, 5)
    queued = asyncio.create_task(sqlite_db.write(_insert("queued")))  # behind the first
    await asyncio.sleep(0.05)
    queued.cancel()
    await asyncio.sleep(0.05)  # its cancellation is seen before the thread comes to it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await queued
    await first
    async with sqlite_db.session() as s:
        assert (await s.execute(select(THINGS.c.name))).scalars().all() == ["held"]


async def test_writes_share_one_connection_opened_once(sqlite_db: Database) -> None:
    got = await asyncio.gather(*(sqlite_db.write(_insert(f"w{i}")) for i in range(6)))
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert sqlite_db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # the writer
    await sqlite_db.dispose()
    assert sqlite_db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_what_a_confirmation_sets_off_keeps_each_items_columns() -> None:
    from datetime import timedelta

    from gateway.booking.records import FollowOn
    from gateway.outbox import enqueue
    from repairs_gateway_sdk.timeutil import now

    follow_on = FollowOn()
    enqueue(follow_on, "demo", "works_order.raise", {"reference": "R-1"})  # type: ignore[arg-type]
    reminder = enqueue(follow_on, "demo", "notification.send", {"event": "reminder"})  # type: ignore[arg-type]
    due = now() + timedelta(days=2)
    reminder.next_attempt_at = due  # set after it was added, as the notifications do
    rows = follow_on.rows()
    assert [r["kind"] for r in rows] == ["works_order.raise", "notification.send"]
    assert rows[1]["next_attempt_at"] == due and rows[1]["payload"] == {"event": "reminder"}
    assert all(r["state"] == "pending" and r["attempts"] == 0 for r in rows)
    assert all("id" not in r and "created_at" not in r for r in rows)  # the table's defaults
    with pytest.raises(TypeError):
        follow_on.add(Repair())


# -- PostgreSQL: a ping only after sitting idle --------------------------------------------------
async def test_a_postgres_connection_is_pinged_only_after_sitting_idle(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from gateway.storage.database import sync_url
    from tests.pg import create_database

    url = create_database(postgres_admin_url, f"t_{uuid.uuid4().hex[:12]}")
    db = Database(url)
    db.ping_after_idle_seconds = 0.3
    pings = 0
    do_ping = db.engine.dialect.do_ping

    def counted(dbapi_conn):  # type: ignore[no-untyped-def]
        nonlocal pings
        pings += 1
        return do_ping(dbapi_conn)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)

    async def backend() -> int:
        async with db.session() as s:
            return int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        first = await backend()
        assert await backend() == first and pings == 0  # new, then used a moment ago
        await asyncio.sleep(0.4)
        assert await backend() == first and pings == 1  # idle: pinged, alive
        killer = create_engine(sync_url(url), poolclass=NullPool)  # not from the pool
        with killer.connect() as other:  # the server drops the pooled connection
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        killer.dispose()
        await asyncio.sleep(0.4)
        replaced = await backend()  # no error: the dead one was replaced at checkout
        assert replaced != first and pings == 2
        # two connections in the pool: one at a time, the last used is used again (LIFO),
        # so the other sits idle rather than both taking turns and each going stale
        async with db.session() as a, db.session() as b:
            await a.execute(text("SELECT 1"))
            await b.execute(text("SELECT 1"))
        used = {await backend() for _ in range(4)}
        assert len(used) == 1 and pings == 2
    finally:
        await db.dispose()

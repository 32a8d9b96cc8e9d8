"""A booking's writes on SQLite skip SQLAlchemy's execution machinery (storage/prepared.py):
what they write, and the errors they raise, are what SQLAlchemy's own path gives."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from gateway import audit
from gateway.booking import records
from gateway.booking.create import _outbox_values, _row_values, new_repair
from gateway.storage import prepared
from gateway.storage.database import Database

AT = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)


def _booking(reference: str, key: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    record = {
        "council": "demo",
        "client_id": "key1",
        "key": key,
        "request_hash": "h" * 64,
        "state": "in_progress",
        "response_status": None,
        "response_body": None,  # JSON: None is written as SQLAlchemy writes it
        "repair_reference": reference,
        "created_at": AT,
    }
    repair = new_repair(
        council="demo",
        reference=reference,
        property_id="00012345",
        postcode="LN1 1AA",
        sor_code="N631111",
        trade="plumbing",
        size="small",
        duration_minutes=60,
        priority="normal",
        description="Tap drips – all night, \u00e9\u00e8 \U0001f6bf",
        contact={"name": "Ann", "phone": "07700 900123"},
        communal=False,
        status="booking",
        scheduler="drs",
        vendor_slot={},
        client_id="key1",
        created_at=AT,
        updated_at=AT,
    )
    reconcile = _outbox_values("demo", "booking.reconcile", {"reference": reference}, AT, 15)
    return record, _row_values(repair), reconcile


async def _write_a_booking(db: Database) -> None:
    record, repair, reconcile = _booking("REF0001", "k-1")
    item = await db.write(records._claim_and_insert(record, repair, reconcile))
    assert item is not None
    follow_on = [_outbox_values("demo", "works_order.raise", {"reference": "REF0001"}, AT, 0)]
    confirmed = await db.write(
        records._confirm_statements(
            {
                "w_council": "demo",
                "w_reference": "REF0001",
                "status": "booked",
                "slot_start": AT + timedelta(days=1),
                "slot_end": AT + timedelta(days=1, hours=4),
                "slot_label": "Morning",
                "vendor_order_ref": "ORD-1",
                "vendor_booking_ref": None,
                "vendor_slot": {"slot": "AM", "n": 1, "ok": True},
                "works_order_adaptor": None,
                "updated_at": AT + timedelta(seconds=2),
            },
            {
                "w_council": "demo",
                "w_client_id": "key1",
                "w_key": "k-1",
                "state": "done",
                "response_status": 201,
                "response_body": {"reference": "REF0001", "nested": {"a": [1, 2, None]}},
            },
            item,
            follow_on,
        )
    )
    assert confirmed is True
    action = "http.POST /v1/councils/{council}/repairs"
    await audit.record(db, action, key_id="key1", council="demo")


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
            for table in ("idempotency_keys", "repairs", "outbox", "audit_events")
        }
    finally:
        conn.close()


async def _database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    await asyncio.to_thread(db.migrate)
    return db


def _sqlalchemy_run(conn: Any, stmt: Any, params: Any) -> Any:
    return conn.execute(stmt, params)


async def test_a_booking_writes_the_rows_sqlalchemy_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = await _database(tmp_path / "direct.db")
    try:
        await _write_a_booking(direct)
    finally:
        await direct.dispose()
    planned = [k for k, plan in prepared._plans.items() if plan is not None]
    assert len(planned) >= 6  # claim, repair, reconcile, confirm, answer, drop, item, audit

    # the same writes through SQLAlchemy's own execution
    monkeypatch.setattr(records, "run", _sqlalchemy_run)
    monkeypatch.setattr(audit, "run", _sqlalchemy_run)
    routed = await _database(tmp_path / "routed.db")
    try:
        await _write_a_booking(routed)
    finally:
        await routed.dispose()

    a, b = _rows(tmp_path / "direct.db"), _rows(tmp_path / "routed.db")
    # the audit row's time is its own (now) in each run
    a["audit_events"] = [r[:1] + r[2:] for r in a["audit_events"]]
    b["audit_events"] = [r[:1] + r[2:] for r in b["audit_events"]]
    assert all(a[t] for t in a), a
    assert a == b


async def test_a_key_used_twice_is_a_replay_and_a_reference_drawn_twice_an_integrity_error(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "g.db")
    try:
        first = _booking("REF0001", "k-1")
        assert await db.write(records._claim_and_insert(*first)) is not None
        assert await db.write(records._claim_and_insert(*first)) is None  # the key's record
        with pytest.raises(IntegrityError):  # SQLAlchemy's error, as create.py catches it
            await db.write(records._claim_and_insert(*_booking("REF0001", "k-2")))
        # nothing of the refused write was kept; the writer goes on working
        assert await db.write(records._claim_and_insert(*_booking("REF0002", "k-3"))) is not None
    finally:
        await db.dispose()
    rows = _rows(tmp_path / "g.db")
    assert [r[3] for r in rows["idempotency_keys"]] == ["k-1", "k-3"]
    assert len(rows["repairs"]) == 2


async def test_statement_listeners_see_every_statement(tmp_path: Path) -> None:
    """With a statement listener (tracing's SQL spans) the writes go SQLAlchemy's way, so
    the listener sees each of them."""
    db = await _database(tmp_path / "g.db")
    seen: list[str] = []
    listener: Callable[..., None] = lambda _c, _cur, statement, *_: seen.append(statement)  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        await db.write(records._claim_and_insert(*_booking("REF0001", "k-1")))
    finally:
        await db.dispose()
    assert [s.split()[0] for s in seen] == ["INSERT", "INSERT", "INSERT"]


async def test_what_the_shortcut_does_not_do_is_sqlalchemys_as_ever(tmp_path: Path) -> None:
    """A value a column type refuses, a connection outside a transaction, a statement with
    parameters rendered at execution, a SELECT: each goes SQLAlchemy's own way, with its own errors
    and its own transaction handling."""
    from sqlalchemy import bindparam, delete, select
    from sqlalchemy.exc import StatementError

    from gateway.storage.models import IdempotencyRecord

    db = await _database(tmp_path / "g.db")
    record, repair, reconcile = _booking("REF0001", "k-1")
    try:
        with pytest.raises(StatementError, match="naive"):  # as SQLAlchemy raises it
            await db.write(
                records._claim_and_insert(
                    {**record, "created_at": AT.replace(tzinfo=None)}, repair, reconcile
                )
            )
        assert await db.write(records._claim_and_insert(record, repair, reconcile)) is not None
        keys = IdempotencyRecord.__table__
        drop = delete(keys).where(keys.c.key.in_(bindparam("keys", expanding=True)))

        def expanding(conn: Any) -> int:
            return int(prepared.run(conn, drop, {"keys": ["k-1", "k-9"]}).rowcount)

        assert await db.write(expanding) == 1  # IN (...) rendered by SQLAlchemy at execution
        read = select(records.OUTBOX.c.payload, records.OUTBOX.c.created_at)

        def reading(conn: Any) -> Any:
            return prepared.run(conn, read, {}).one()

        # a SELECT's rows are read by SQLAlchemy, through the columns' types (JSON, UTC time)
        assert tuple(await db.write(reading)) == ({"reference": "REF0001"}, AT)
        async with db.engine.connect() as conn:  # no transaction begun: SQLAlchemy begins one

            def outside(sync: Any) -> None:
                prepared.run(sync, records._INSERT_RECONCILE, reconcile)
                sync.rollback()

            await conn.run_sync(outside)
        async with db.session() as s:
            outbox = (await s.execute(select(records.OUTBOX.c.id))).all()
        assert len(outbox) == 1  # the reconcile item of the booking; the rolled back one gone
    finally:
        await db.dispose()

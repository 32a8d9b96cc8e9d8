"""Migration 0007: the outbox's pending-item indexes (the worker's poll and a booking's
reconcile clean-up stay flat however many reminders are pending; bench/bench_growth.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from gateway.storage.database import _alembic_config, migrate, schema_state, sync_url

NEW = {"ix_outbox_state_due", "ix_outbox_state_kind"}


def _indexes(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return {ix["name"] for ix in inspect(engine).get_indexes("outbox") if ix["name"]}
    finally:
        engine.dispose()


def _seed(url: str, pending: int, done: int) -> None:
    at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(pending + done):
        state = "pending" if i < pending else "done"
        rows.append(
            {
                "council": f"c{i % 7}",
                "kind": "notification.send",
                "payload": json.dumps({"reference": f"R{i:06d}", "event": "reminder"}),
                "state": state,
                "attempts": 0,
                "next": at + timedelta(days=1 + i % 30),
                "created": at,
            }
        )
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO outbox (council, kind, payload, state, attempts, "
                    "next_attempt_at, created_at) VALUES (:council, :kind, :payload, :state, "
                    ":attempts, :next, :created)"
                ),
                rows,
            )
    finally:
        engine.dispose()


def test_0007_adds_the_indexes_keeps_the_rows_and_downgrades(database_url: str) -> None:
    migrate(database_url, "0006")
    _seed(database_url, pending=20, done=20)
    assert not NEW & _indexes(database_url)
    migrate(database_url)
    assert schema_state(database_url).state == "current"
    assert _indexes(database_url) >= NEW
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 40
    finally:
        engine.dispose()
    command.downgrade(_alembic_config(database_url), "0006")
    assert not NEW & _indexes(database_url)
    migrate(database_url)
    assert _indexes(database_url) >= NEW


def _filtered(plan: dict[str, Any]) -> int:
    """The most rows any node of the plan read and threw away."""
    most = int(plan.get("Rows Removed by Filter", 0))
    for child in plan.get("Plans", []):
        most = max(most, _filtered(child))
    return most


@pytest.mark.postgres
def test_poll_and_reconcile_clean_up_read_no_pending_reminders_on_postgres(
    postgres_admin_url: str,
) -> None:
    import uuid

    from tests.pg import create_database

    url = create_database(postgres_admin_url, f"t_{uuid.uuid4().hex[:12]}")
    migrate(url)
    _seed(url, pending=5000, done=5000)  # reminders due in the coming weeks
    queries = {
        "poll": "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now() "
        "AND (locked_until IS NULL OR locked_until < now()) "
        "ORDER BY next_attempt_at, id LIMIT 20",
        "reconcile clean-up": "DELETE FROM outbox WHERE kind = 'booking.reconcile' "
        "AND council = 'c1' AND state = 'pending' AND locked_until IS NULL "
        "AND (payload ->> 'reference') = 'R000001'",
    }
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE outbox"))
            for name, sql in queries.items():
                doc = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar()
                conn.rollback()
                assert doc is not None
                plan = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
                assert _filtered(plan) <= 10, (name, plan)
    finally:
        engine.dispose()

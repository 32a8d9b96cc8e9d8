"""Adaptor call statistics flushed into their hour's rows add up across flushes (and across
replicas sharing the database), as the migration report reads them."""

from __future__ import annotations

from gateway.report import flush_stats, migration_report
from gateway.resilience import CallStats
from gateway.storage.database import Database


async def test_flushes_from_two_replicas_add_up_in_the_report(database_url: str) -> None:
    dbs = [Database(database_url), Database(database_url)]  # two processes' own pools
    dbs[0].migrate()
    try:
        first, second = CallStats(), CallStats()
        first.record("demo", "appointments", "drs", 120.0, False)
        first.record("demo", "appointments", "drs", 80.0, True)
        first.record("demo", "bookings", "drs", 900.0, False)
        second.record("demo", "appointments", "drs", 2500.0, False)
        second.record("other", "appointments", "drs", 50.0, False)
        assert await flush_stats(dbs[0], first) == 2
        assert await flush_stats(dbs[1], second) == 2
        assert await flush_stats(dbs[1], CallStats()) == 0  # nothing counted: nothing written
        report = await migration_report(dbs[0], "demo")
        drs = report["capabilities"]["appointments"]["adaptors"]["drs"]
        assert drs["calls"] == 3 and drs["error_rate"] == round(1 / 3, 4)
        assert drs["mean_ms"] == round((120 + 80 + 2500) / 3, 1) and drs["max_ms"] == 2500.0
        assert drs["p99_ms_at_most"] is not None and drs["p99_ms_at_most"] >= 2500
        assert report["capabilities"]["bookings"]["adaptors"]["drs"]["calls"] == 1
        other = await migration_report(dbs[0], "other")  # another council's rows stay its own
        assert other["capabilities"]["appointments"]["adaptors"]["drs"]["calls"] == 1
    finally:
        for db in dbs:
            await db.dispose()

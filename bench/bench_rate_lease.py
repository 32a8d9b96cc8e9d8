"""What a key's rate limit costs a request (issue 16: booking overhead, request latency).

    .venv/bin/python -m bench.bench_rate_lease [--leases 2000] [--requests 6000]

Each replica serves a key's requests from a *lease*: a share of the minute's allowance taken
from the shared database in one transaction (gateway/ratelimit.py). The request that finds its
replica's lease used up waits for that transaction: once a minute for a key with a large
allowance, one request in six for a front end at 600 a minute. This bench measures, on a
temporary SQLite database migrated as the gateway migrates it:

- the lease itself (``SharedRateLimiter._lease``), a new minute's row now and then (pruning
  once a minute, as in service);
- the floor, in the same run: the same statements (INSERT OR IGNORE, SELECT, UPDATE) in one
  ``BEGIN IMMEDIATE`` ... ``COMMIT`` on a bare ``sqlite3`` connection to the same file: what
  SQLite itself costs;
- ``take()`` as a request calls it, for a key at 600 a minute (a lease every sixth request):
  p50, p90, p99 and max over ``--requests`` calls, the event loop otherwise idle.

Figures are medians of per-call wall time on this machine; compare only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import log, machine_info


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def measure(path: Path, leases: int, requests: int) -> dict[str, list[float]]:
    from gateway.ratelimit import SharedRateLimiter
    from gateway.storage.database import Database

    db = Database(f"sqlite:///{path}")
    limiter = SharedRateLimiter(db)
    out: dict[str, list[float]] = {"lease": [], "floor": [], "take": []}
    raw = sqlite3.connect(path, isolation_level=None, timeout=30)
    raw.execute("PRAGMA synchronous=NORMAL")  # as the gateway's connections (WAL: no fsync)
    try:
        for i in range(50):  # warm: the kept writer, compiled statements, the file's pages
            await limiter._lease(f"warm{i % 5}", 10 + i // 25, 6, 600)
        for i in range(leases):
            key, minute = f"k{i % 7}", 1000 + i // 50
            t0 = time.perf_counter()
            await limiter._lease(key, minute, 6, 600)
            out["lease"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(
                "INSERT OR IGNORE INTO rate_windows (key_id, window, count) VALUES (?, ?, 0)",
                (f"f{i % 7}", minute),
            )
            (used,) = raw.execute(
                "SELECT count FROM rate_windows WHERE key_id = ? AND window = ?",
                (f"f{i % 7}", minute),
            ).fetchone()
            raw.execute(
                "UPDATE rate_windows SET count = count + ? WHERE key_id = ? AND window = ?",
                (min(6, 600 - used), f"f{i % 7}", minute),
            )
            raw.execute("COMMIT")
            out["floor"].append((time.perf_counter() - t0) * 1000)
        # a front end at 600 a minute, as requests call it (the clock's minute as in service)
        for i in range(requests):
            t0 = time.perf_counter()
            await limiter.take(f"front-end-{i // 600}", 600)
            out["take"].append((time.perf_counter() - t0) * 1000)
    finally:
        raw.close()
        await db.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_rate_lease", description=__doc__)
    ap.add_argument("--leases", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=6000)
    args = ap.parse_args(argv)
    from gateway.storage.database import migrate

    with tempfile.TemporaryDirectory(prefix="bench-lease-") as tmp:
        path = Path(tmp) / "gateway.db"
        migrate(f"sqlite:///{path}")
        log(f"[lease] {args.leases} leases and floors alternated, then {args.requests} takes")
        out = asyncio.run(measure(path, args.leases, args.requests))
    info = machine_info()
    print(  # noqa: T201
        f"{info['date']}; code {info['git'].get('commit', '?')}; {info['cpu']}, "
        f"load average {' '.join(info['loadavg'])}"
    )
    print("| measure | n | p50 ms | p90 ms | p99 ms | max ms |")  # noqa: T201
    print("|---|---:|---:|---:|---:|---:|")  # noqa: T201
    for name, label in (
        ("lease", "lease (`SharedRateLimiter._lease`)"),
        ("floor", "floor: the same statements on bare sqlite3"),
        ("take", "`take()` at 600 a minute (a lease every 6th)"),
    ):
        v = out[name]
        print(  # noqa: T201
            f"| {label} | {len(v)} | {statistics.median(v):.3f} | {pct(v, 0.9):.3f} "
            f"| {pct(v, 0.99):.3f} | {max(v):.3f} |"
        )
    ratio = statistics.median(out["lease"]) / statistics.median(out["floor"])
    print(f"lease / floor p50: {ratio:.1f}x")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

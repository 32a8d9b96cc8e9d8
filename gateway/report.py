"""Call statistics persistence and the strangler migration report: per capability, the share
of calls per adaptor, error rates, latency, and shadow agreement with examples - the evidence
a council needs before it switches a legacy system off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from gateway.resilience import LATENCY_BUCKETS_MS, CallStats
from gateway.storage.database import Database, insert_ignoring
from gateway.storage.models import AdaptorCallStat, ShadowComparison, table_of
from gateway.storage.prepared import run

EXAMPLES = 5


async def flush_stats(database: Database, stats: CallStats) -> int:
    """Add the calls counted since the last flush to their hour's rows (one transaction,
    ``Database.write``, its statements made once: ``_FLUSH``); how many rows were touched."""
    taken = stats.take()
    if not taken:
        return 0
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")

    def statements(conn: Connection) -> int:
        add, read, change = _FLUSH[conn.dialect.name]
        for (council, capability, adaptor), st in taken.items():
            key = {"council": council, "capability": capability, "adaptor": adaptor, "hour": hour}
            run(conn, add, {**key, "buckets": [0] * (len(LATENCY_BUCKETS_MS) + 1)})
            old = conn.execute(read, key).one()
            buckets = list(old.buckets or [0] * len(st.buckets))
            run(
                conn,
                change,
                {
                    "row": old.id,
                    "calls": st.calls,
                    "errors": st.errors,
                    "total_ms": st.total_ms,
                    "max_ms": max(old.max_ms, st.max_ms),
                    "buckets": [a + b for a, b in zip(buckets, st.buckets, strict=False)],
                },
            )
        return len(taken)

    return await database.write(statements, background=True)


def _flush_statements(dialect: str) -> tuple[Any, Any, Any]:
    """An hour's row made if missing, read with its row locked, and added to."""
    stat = table_of(AdaptorCallStat)
    c = stat.c
    key = ("council", "capability", "adaptor", "hour")
    row: dict[str, Any] = {k: bindparam(k, type_=c[k].type) for k in (*key, "buckets")}
    empty = {"calls": 0, "errors": 0, "total_ms": 0.0, "max_ms": 0.0}
    this_hour = [c[k] == bindparam(k) for k in key]
    return (
        insert_ignoring(dialect, stat, {**row, **empty}),
        select(c.id, c.max_ms, c.buckets).where(*this_hour).with_for_update(),
        update(stat)
        .where(c.id == bindparam("row"))
        .values(
            calls=c.calls + bindparam("calls"),
            errors=c.errors + bindparam("errors"),
            total_ms=c.total_ms + bindparam("total_ms"),
            max_ms=bindparam("max_ms"),
            buckets=bindparam("buckets", type_=c.buckets.type),
        ),
    )


_FLUSH = {d: _flush_statements(d) for d in ("sqlite", "postgresql")}


def _percentile(buckets: list[int], q: float) -> float | None:
    total = sum(buckets)
    if total == 0:
        return None
    target, seen = q * total, 0
    for i, n in enumerate(buckets):
        seen += n
        if seen >= target:
            return float(LATENCY_BUCKETS_MS[i]) if i < len(LATENCY_BUCKETS_MS) else float("inf")
    return None


async def migration_report(database: Database, council: str) -> dict[str, Any]:
    capabilities: dict[str, dict[str, Any]] = {}
    async with database.session() as s:
        rows = (
            (await s.execute(select(AdaptorCallStat).where(AdaptorCallStat.council == council)))
            .scalars()
            .all()
        )
        agg: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            a = agg.setdefault(
                (r.capability, r.adaptor),
                {"calls": 0, "errors": 0, "total_ms": 0.0, "max_ms": 0.0, "buckets": None},
            )
            a["calls"] += r.calls
            a["errors"] += r.errors
            a["total_ms"] += r.total_ms
            a["max_ms"] = max(a["max_ms"], r.max_ms)
            b = list(r.buckets or [])
            a["buckets"] = (
                b
                if a["buckets"] is None
                else [x + y for x, y in zip(a["buckets"], b, strict=False)]
            )
        for (cap, adaptor), a in agg.items():
            capabilities.setdefault(cap, {"calls": 0, "adaptors": {}, "shadow": None})
            capabilities[cap]["calls"] += a["calls"]
            capabilities[cap]["adaptors"][adaptor] = {
                "calls": a["calls"],
                "error_rate": round(a["errors"] / a["calls"], 4) if a["calls"] else 0.0,
                "mean_ms": round(a["total_ms"] / a["calls"], 1) if a["calls"] else None,
                "p50_ms_at_most": _percentile(a["buckets"] or [], 0.5),
                "p99_ms_at_most": _percentile(a["buckets"] or [], 0.99),
                "max_ms": round(a["max_ms"], 1),
            }
        for totals in capabilities.values():
            for a in totals["adaptors"].values():
                a["share"] = round(a["calls"] / totals["calls"], 4) if totals["calls"] else 0.0
        shadow_rows = (
            await s.execute(
                select(
                    ShadowComparison.capability,
                    ShadowComparison.primary,
                    ShadowComparison.shadow,
                    ShadowComparison.agreed,
                    func.count(),
                )
                .where(ShadowComparison.council == council)
                .group_by(
                    ShadowComparison.capability,
                    ShadowComparison.primary,
                    ShadowComparison.shadow,
                    ShadowComparison.agreed,
                )
            )
        ).all()
        for cap, primary, shadow, agreed, n in shadow_rows:
            entry = capabilities.setdefault(cap, {"calls": 0, "adaptors": {}, "shadow": None})
            sh: dict[str, Any] = entry["shadow"] or {
                "primary": primary,
                "shadow": shadow,
                "compared": 0,
                "agreed": 0,
                "disagreements": [],
            }
            sh["compared"] += n
            sh["agreed"] += n if agreed else 0
            entry["shadow"] = sh
        for cap, entry in capabilities.items():
            found: dict[str, Any] | None = entry["shadow"]
            if found is None:
                continue
            sh = found
            sh["agreement_rate"] = round(sh["agreed"] / sh["compared"], 4)
            examples = (
                (
                    await s.execute(
                        select(ShadowComparison)
                        .where(
                            ShadowComparison.council == council,
                            ShadowComparison.capability == cap,
                            ShadowComparison.agreed.is_(False),
                        )
                        .order_by(ShadowComparison.id.desc())
                        .limit(EXAMPLES)
                    )
                )
                .scalars()
                .all()
            )
            sh["disagreements"] = [{"at": e.created_at.isoformat(), **e.detail} for e in examples]
    return {"council": council, "capabilities": capabilities}


def render_text(report: dict[str, Any]) -> str:
    lines = [f"Migration report for council {report['council']}"]
    if not report["capabilities"]:
        lines.append("  no calls recorded yet")
    for cap, entry in sorted(report["capabilities"].items()):
        lines.append(f"\n{cap}: {entry['calls']} call(s)")
        for name, a in sorted(entry["adaptors"].items()):
            lines.append(
                f"  {name:<20} share {a['share']:>6.1%}  errors {a['error_rate']:>6.1%}"
                f"  mean {a['mean_ms']} ms  p99 <= {a['p99_ms_at_most']} ms"
            )
        sh = entry.get("shadow")
        if sh:
            lines.append(
                f"  shadow {sh['shadow']} vs {sh['primary']}: {sh['compared']} compared,"
                f" agreement {sh['agreement_rate']:.1%}"
            )
            for d in sh["disagreements"]:
                lines.append(f"    disagreement {d}")
    return "\n".join(lines)

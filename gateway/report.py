"""Call statistics persistence and the strangler migration report: per capability, the share
of calls per adaptor, error rates, latency, and shadow agreement with examples - the evidence
a council needs before it switches a legacy system off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from gateway.resilience import LATENCY_BUCKETS_MS, CallStats
from gateway.storage.database import Database, insert_ignoring
from gateway.storage.models import AdaptorCallStat, ShadowComparison, table_of

EXAMPLES = 5


async def flush_stats(database: Database, stats: CallStats) -> int:
    """Add the calls counted since the last flush to their hour's rows (one transaction,
    ``Database.write``); how many rows were touched."""
    taken = stats.take()
    if not taken:
        return 0
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    empty = {"calls": 0, "errors": 0, "total_ms": 0.0, "max_ms": 0.0}
    stat = table_of(AdaptorCallStat)
    c = stat.c

    def statements(conn: Connection) -> int:
        for (council, capability, adaptor), st in taken.items():
            key = {"council": council, "capability": capability, "adaptor": adaptor, "hour": hour}
            row = {**key, **empty, "buckets": [0] * (len(LATENCY_BUCKETS_MS) + 1)}
            conn.execute(insert_ignoring(conn.dialect.name, stat, row))
            this = [c[k] == v for k, v in key.items()]
            old = conn.execute(
                select(c.id, c.max_ms, c.buckets).where(*this).with_for_update()
            ).one()
            buckets = list(old.buckets or [0] * len(st.buckets))
            conn.execute(
                update(stat)
                .where(c.id == old.id)
                .values(
                    calls=c.calls + st.calls,
                    errors=c.errors + st.errors,
                    total_ms=c.total_ms + st.total_ms,
                    max_ms=max(old.max_ms, st.max_ms),
                    buckets=[a + b for a, b in zip(buckets, st.buckets, strict=False)],
                )
            )
        return len(taken)

    return await database.write(statements, background=True)


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

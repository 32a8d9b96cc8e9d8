"""Benchmarks of the gateway's foundation, in one run on this machine.

    .venv/bin/python -m bench.bench_foundation            # full run (6 to 9 minutes)
    .venv/bin/python -m bench.bench_foundation --quick    # a smoke run (about 1 minute)

1. HTTP: the gateway's ``addresses`` and ``appointments`` calls for the demo council (CSV
   fallback) against the framework's floor (``bench.floor_app``: a bare Starlette app serving
   the gateway's own answers from a dict), both under ``uvicorn.run`` with one worker, pinned
   to CPU 0, while the load generator (wrk if installed, else ``bench.loadgen``) runs in its own
   process on CPU 1. Throughput and p50/p99 at 1, 10 and 50 concurrent keep-alive clients.
   Goal: the gateway reaches at least 60% of the floor's throughput.
2. Property file: national-scale CSVs (100k, 1M and 4M generated properties, UK-style
   postcodes, 15-40 properties per postcode) are imported with ``build_index`` in a fresh
   process each (wall time, peak RSS from wait4), then postcode lookups are timed through
   ``PropertyIndex.by_postcode`` and the adaptor's ``addresses()``. Goals: import < 120 s, peak
   memory < 2 GiB, lookup p99 < 5 ms, lookup cost flat from 100k to 4M properties.
3. When the gateway misses its HTTP goal (or with ``--profile``): an in-process profile of
   both calls (cProfile, the app driven directly through ASGI without an HTTP server).

Everything runs in a temporary directory (database, keys, index files, generated CSVs) that is
removed at the end; only 127.0.0.1 is used. ``--report FILE`` writes the results as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

# the helpers other benches import from here (they live in bench.common)
from bench.common import (  # noqa: F401
    SERVER_CPU,
    busy_cpu_seconds,
    free_port,
    log,
    machine_info,
    process_cpu_seconds,
)
from bench.http_floor import (
    http_markdown,
    profile_markdown,
    run_http,
    run_profile,
)
from bench.national_properties import (
    properties_markdown,
    run_properties,
)


# =========================================================================================
# Main
# =========================================================================================
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_foundation", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    ap.add_argument("--duration", type=int, help="seconds measured per cell (default 8)")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per cell (default 2)")
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--lookups", type=int, help="postcode lookups per size (default 20000)")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    ap.add_argument(
        "--tries", type=int, help="runs per cell at most when the machine is busy (default 2)"
    )
    ap.add_argument("--label", help="how to name the code measured (default: git commit)")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-properties", action="store_true")
    prof = ap.add_mutually_exclusive_group()
    prof.add_argument("--profile", action="store_true", help="profile even if the goal is met")
    prof.add_argument("--no-profile", action="store_true")
    ap.add_argument("--report", type=Path, help="also write the results as Markdown here")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    args = ap.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3 if quick else 8)
    args.tries = args.tries or (1 if quick else 2)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.concurrency = args.concurrency or [1, 10, 50]
    args.sizes = args.sizes or (
        [10_000, 50_000, 200_000] if quick else [100_000, 1_000_000, 4_000_000]
    )
    args.lookups = args.lookups or (3_000 if quick else 20_000)
    if len(os.sched_getaffinity(0)) < 2:
        args.no_pin = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    v = info["versions"]
    md = [
        "## Foundation benchmark run",
        "",
        f"- date: {info['date']}; machine: {info['cpu']}, {info['cores']} cores, "
        f"{info['memory_gib']} GiB, Linux {info['kernel']}; load average at start "
        f"{' '.join(info['loadavg'])}",
        f"- Python {info['python']}; fastapi {v['fastapi']}, starlette {v['starlette']}, "
        f"uvicorn {v['uvicorn']} (h11 {v['h11']}, uvloop {v['uvloop']}), pydantic "
        f"{v['pydantic']}, SQLAlchemy {v['sqlalchemy']}, SQLite {v['sqlite']}",
        "- code: "
        + (
            args.label
            or f"commit {info['git'].get('commit') or '?'}"
            + (
                f", with uncommitted changes in {info['git']['modified']}"
                if info["git"].get("modified")
                else ""
            )
        ),
        "- command: `.venv/bin/python -m bench.bench_foundation "
        + shlex.join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
    ]
    verdicts: list[tuple[str, bool, str]] = []
    raw: dict[str, Any] = {"machine": info}
    tmp = Path(tempfile.mkdtemp(prefix="rgw-bench-"))
    try:
        if not args.skip_http:
            http, ctx = run_http(args, tmp)
            table, ok = http_markdown(http)
            md += ["### HTTP: gateway against the framework's floor", "", table]
            worst = min(
                http.get(r, c, "gateway").result.rps / http.get(r, c, "floor").result.rps
                for r in ("addresses", "appointments")
                for c in args.concurrency
            )
            verdicts.append(
                (
                    "gateway >= 60% of the floor's throughput",
                    ok,
                    f"lowest ratio {worst:.0%}",
                )
            )
            raw["http"] = [asdict(c) for c in http.cells]
            if (not ok and not args.no_profile) or args.profile:
                log("[profile] profiling the gateway in-process ...")
                prof = run_profile(
                    ctx, tmp, 600 if args.quick else 3000, None if args.no_pin else SERVER_CPU
                )
                raw["profile"] = prof
                md += ["### Profile of the gateway (in-process)", "", profile_markdown(prof)]
        if not args.skip_properties:
            results, gen_s = run_properties(args, tmp)
            table, goals = properties_markdown(results, gen_s, args.lookups)
            md += ["### National-scale property file", "", table]
            verdicts += [
                ("import under 120 s", *goals["import"]),
                ("peak memory under 2 GiB", *goals["memory"]),
                ("postcode lookup p99 under 5 ms", *goals["lookup_p99"]),
                ("lookup cost does not grow with the number of properties", *goals["flat"]),
            ]
            raw["properties"] = [asdict(r) for r in results]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    md += ["### Goals", "", "| goal | met | figure |", "|---|---|---|"]
    md += [f"| {g} | {'yes' if ok else '**no**'} | {fig} |" for g, ok, fig in verdicts]
    if args.quick:
        md += ["", "(`--quick`: short runs and small files; the figures are only indicative.)"]
    md += ["", f"Total bench time: {time.perf_counter() - started:.0f} s.", ""]
    text = "\n".join(md)
    print(text)
    if args.report:
        args.report.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Part 2 of the foundation benchmark: a national-scale property file imported and looked up.
Run through `python -m bench.bench_foundation`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptors.csv_fallback.properties import NATIVE, index_file
from bench.common import (
    FLAT_FACTOR,
    GOAL_IMPORT_S,
    GOAL_LOOKUP_P99_MS,
    GOAL_PEAK_BYTES,
    PY,
    REPO,
    SERVER_CPU,
    busy_cpu_seconds,
    log,
    pin,
)
from bench.loadgen import percentile

# =========================================================================================
# Part 2: national-scale property file
# =========================================================================================
# (area, town, county) for a spread of English postcode areas.
AREAS = [
    ("B", "Birmingham", "West Midlands"),
    ("BD", "Bradford", "West Yorkshire"),
    ("BL", "Bolton", "Greater Manchester"),
    ("BN", "Brighton", "East Sussex"),
    ("BS", "Bristol", ""),
    ("CB", "Cambridge", "Cambridgeshire"),
    ("CV", "Coventry", "West Midlands"),
    ("DE", "Derby", "Derbyshire"),
    ("DH", "Durham", "County Durham"),
    ("DN", "Doncaster", "South Yorkshire"),
    ("E", "London", ""),
    ("EC", "London", ""),
    ("EX", "Exeter", "Devon"),
    ("GL", "Gloucester", "Gloucestershire"),
    ("HU", "Hull", "East Riding of Yorkshire"),
    ("L", "Liverpool", "Merseyside"),
    ("LE", "Leicester", "Leicestershire"),
    ("LN", "Lincoln", "Lincolnshire"),
    ("LS", "Leeds", "West Yorkshire"),
    ("M", "Manchester", "Greater Manchester"),
    ("ME", "Maidstone", "Kent"),
    ("MK", "Milton Keynes", "Buckinghamshire"),
    ("N", "London", ""),
    ("NE", "Newcastle upon Tyne", "Tyne and Wear"),
    ("NG", "Nottingham", "Nottinghamshire"),
    ("NN", "Northampton", "Northamptonshire"),
    ("NR", "Norwich", "Norfolk"),
    ("NW", "London", ""),
    ("OL", "Oldham", "Greater Manchester"),
    ("OX", "Oxford", "Oxfordshire"),
    ("PE", "Peterborough", "Cambridgeshire"),
    ("PL", "Plymouth", "Devon"),
    ("PO", "Portsmouth", "Hampshire"),
    ("PR", "Preston", "Lancashire"),
    ("RG", "Reading", "Berkshire"),
    ("S", "Sheffield", "South Yorkshire"),
    ("SE", "London", ""),
    ("SO", "Southampton", "Hampshire"),
    ("SR", "Sunderland", "Tyne and Wear"),
    ("ST", "Stoke-on-Trent", "Staffordshire"),
    ("SW", "London", ""),
    ("TS", "Middlesbrough", "North Yorkshire"),
    ("W", "London", ""),
    ("WC", "London", ""),
    ("WF", "Wakefield", "West Yorkshire"),
    ("WV", "Wolverhampton", "West Midlands"),
    ("YO", "York", "North Yorkshire"),
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters Royal Mail uses in inward codes
STREET_WORDS = (
    "Acacia Albert Alexandra Ash Beech Birch Bridge Castle Cedar Chapel Church Clarence Elm "
    "George Grange Hawthorn High Holly King Lime Manor Maple Meadow Mill Nelson New North Oak "
    "Orchard Park Poplar Queen Rose School Spring Station Victoria Willow Windsor York"
).split()
STREET_TYPES = (
    "Street Road Avenue Lane Close Way Drive Gardens Crescent Terrace Place Grove Walk Rise"
).split()
BLOCK_NAMES = (
    "Attlee Bevan Brook Churchill Lansbury Morris Nightingale Pankhurst Priestley Seacole "
    "Telford Turing Wilberforce Wren"
).split()
BLOCK_TYPES = ["House", "Court", "Tower", "Heights", "Lodge"]
REASONS = [
    "Leasehold: the leaseholder arranges repairs inside the flat",
    "Shared ownership: the owner arranges repairs",
    "Repairs here are managed by a housing association",
    "Right to Buy completed",
]
HEADER = NATIVE  # the CSV fallback's own column list
OPEN_POSTCODES = 500  # rows of this many postcodes are interleaved, as in an export by id


def _postcodes(rnd: random.Random) -> Iterator[tuple[str, str, str]]:
    """Unique, valid, UK-style postcodes with their town and county."""
    seen: set[str] = set()
    while True:
        area, town, county = rnd.choice(AREAS)
        district = str(rnd.randint(1, {"EC": 4, "WC": 2}.get(area, 40)))
        if area in ("EC", "WC", "SW", "W", "E", "N", "NW", "SE") and rnd.random() < 0.2:
            district = "1" + rnd.choice("ABCHNPRVWXY")  # central London: EC1A, SW1P, W1T ...
        inward = str(rnd.randint(0, 9)) + rnd.choice(INWARD_LETTERS) + rnd.choice(INWARD_LETTERS)
        pc = f"{area}{district} {inward}"
        if pc not in seen:
            seen.add(pc)
            yield pc, town, county


@dataclass
class _Group:
    postcode: str
    templates: list[tuple[str, str, str, bool, bool, str]]  # kind,l1,l2,is_flat,online,reason
    town: str
    county: str
    block_id: str = ""
    seen: bool = False  # a row of it has been written


def _group(rnd: random.Random, pc: str, town: str, county: str) -> _Group:
    n = rnd.randint(15, 40)
    street = f"{rnd.choice(STREET_WORDS)} {rnd.choice(STREET_TYPES)}"
    templates: list[tuple[str, str, str, bool, bool, str]] = []
    if rnd.random() < 0.35:  # a block of flats with its communal parts, and a few houses
        block = f"{rnd.choice(BLOCK_NAMES)} {rnd.choice(BLOCK_TYPES)}"
        templates.append(("communal_block", block, street, False, True, ""))
        houses = rnd.randint(0, 4)
        for k in range(1, n - houses):
            leasehold = rnd.random() < 0.12
            templates.append(
                (
                    "dwelling",
                    f"Flat {k} {block}",
                    street,
                    True,
                    not leasehold,
                    REASONS[0] if leasehold else "",
                )
            )
        first = rnd.randint(1, 60)
        for k in range(houses):
            templates.append(("dwelling", f"{first + 2 * k} {street}", "", False, True, ""))
    else:
        first = rnd.randint(1, 120)
        for k in range(n):
            excluded = rnd.random() < 0.05
            templates.append(
                (
                    "dwelling",
                    f"{first + 2 * k} {street}",
                    "",
                    False,
                    not excluded,
                    rnd.choice(REASONS[1:]) if excluded else "",
                )
            )
    return _Group(pc, templates, town, county)


def generate_property_files(
    targets: list[tuple[int, Path]], seed: int = 20240601
) -> dict[int, list[str]]:
    """Write native-layout CSVs of the given sizes in one streaming pass (each smaller file is
    the first rows of the larger ones); returns each file's postcodes."""
    rnd = random.Random(seed)
    targets = sorted(targets)
    total = targets[-1][0]
    handles = [p.open("w", newline="", encoding="utf-8") for _, p in targets]
    writers = [csv.writer(h, lineterminator="\n") for h in handles]
    for w in writers:
        w.writerow(HEADER)
    postcodes: dict[int, list[str]] = {n: [] for n, _ in targets}
    sizes = [n for n, _ in targets]
    source = _postcodes(rnd)
    open_groups: list[_Group] = []
    uprn = 100_000_000_000
    written = 0
    try:
        while written < total:
            while len(open_groups) < OPEN_POSTCODES:
                pc, town, county = next(source)
                open_groups.append(_group(rnd, pc, town, county))
            gi = rnd.randrange(len(open_groups))
            g = open_groups[gi]
            kind, l1, l2, is_flat, online, reason = g.templates.pop(0)
            pid = f"{written + 1:08d}"
            if kind == "communal_block":
                g.block_id = pid
            uprn += rnd.randint(1, 9)
            row = [
                pid,
                "" if rnd.random() < 0.03 else str(uprn),
                l1,
                l2,
                g.town,
                g.county,
                g.postcode,
                kind,
                g.block_id if is_flat else "",
                "yes" if online else "no",
                reason,
            ]
            for i, n in enumerate(sizes):
                if written < n:
                    writers[i].writerow(row)
                    if not g.seen:
                        postcodes[n].append(g.postcode)
            g.seen = True
            written += 1
            if not g.templates:
                open_groups[gi] = open_groups[-1]
                open_groups.pop()
    finally:
        for h in handles:
            h.close()
    return postcodes


def _vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_import(csv_path: str, index_path: str) -> None:
    """Run in a fresh process: import one file, print JSON."""
    import resource

    from adaptors.csv_fallback.properties import build_index

    rss0 = _vm_rss_kib()
    t0 = time.perf_counter()
    n = build_index(Path(csv_path), Path(index_path))
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "rows": n,
                "seconds": dt,
                "rss_before_kib": rss0,
                "maxrss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _stats_ms(ns: list[int]) -> dict[str, float]:
    ms = sorted(x / 1e6 for x in ns)
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": ms[-1],
        "mean": sum(ms) / len(ms),
    }


def child_lookup(index_path: str, csv_path: str, sample_path: str) -> None:
    """Run in a fresh process: time postcode lookups three ways, print JSON."""
    from adaptors.csv_fallback.adaptor import CsvFallbackAdaptor
    from adaptors.csv_fallback.config import CsvFallbackConfig
    from adaptors.csv_fallback.properties import PropertyIndex, index_is_current
    from repairs_gateway_sdk.adaptor import AdaptorContext

    index, source = Path(index_path), Path(csv_path)
    sample: list[str] = json.loads(Path(sample_path).read_text())
    clock = time.perf_counter_ns
    idx = PropertyIndex(index)
    t = clock()
    idx.by_postcode(sample[0])
    first_ms = (clock() - t) / 1e6
    out: dict[str, Any] = {"first_lookup_ms": first_ms, "lookups": len(sample)}

    # The index keeps an in-memory LRU of answers; every lookup here is timed cold (cache
    # cleared first), so the figures are the index's, whatever the sample's repeats.
    cold = idx._by_postcode.cache_clear
    lat: list[int] = []
    rows = 0
    for pc in sample:
        cold()
        t = clock()
        got = idx.by_postcode(pc)
        lat.append(clock() - t)
        rows += len(got)
    out["by_postcode"] = _stats_ms(lat)
    out["rows_per_lookup"] = rows / len(sample)

    conn = idx._conn()
    sql = (
        "SELECT id,uprn,lines,postcode,kind,parent_id,online,reason FROM properties "
        "WHERE postcode=? ORDER BY rowid"
    )
    lat = []
    for pc in sample:
        t = clock()
        conn.execute(sql, (pc,)).fetchall()
        lat.append(clock() - t)
    out["sql_only"] = _stats_ms(lat)

    # Through the adaptor: its index is <index_dir>/<file's stem>-<digest of its path>.sqlite.
    cfg = CsvFallbackConfig(properties_file=str(source), index_dir=str(index.parent))
    ctx = AdaptorContext(
        council="bench", name="csv", config_dir=index.parent, data_dir=index.parent
    )
    adaptor = CsvFallbackAdaptor(cfg, ctx)
    if adaptor.index_path != index or not index_is_current(source, index):
        raise RuntimeError("the adaptor would rebuild the index; check the file names")

    async def via_adaptor() -> list[int]:
        await adaptor.start()
        lat: list[int] = []
        for pc in sample:
            cold()
            t = clock()
            await adaptor.addresses(pc)
            lat.append(clock() - t)
        return lat

    out["adaptor"] = _stats_ms(asyncio.run(via_adaptor()))
    print(json.dumps(out))


def run_lookup_child(
    code: str, index_path: Path, csv_path: Path, sample_path: Path, cpu: int | None
) -> dict[str, Any]:
    """Run the lookups in a fresh process; also records how many cores other processes used
    meanwhile (p99 over a few seconds is sensitive to them)."""
    b0, t0 = busy_cpu_seconds(), time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-c", code, str(index_path), str(csv_path), str(sample_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=pin(cpu),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    b1, wall = busy_cpu_seconds(), time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"lookups failed ({proc.returncode}): {err[-3000:]}")
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    own = usage.ru_utime + usage.ru_stime
    data["other_load"] = max(0.0, (b1 - b0) - own) / wall
    return data


def run_import_child(csv_path: Path, index_path: Path, cpu: int | None) -> dict[str, Any]:
    """Import in a fresh process; peak RSS from wait4 on that very child."""
    code = (
        "import sys; from bench.national_properties import child_import; "
        "child_import(sys.argv[1], sys.argv[2])"
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-c", code, str(csv_path), str(index_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=pin(cpu),
    )
    # Small outputs only: safe to wait before reading the pipes.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"import of {csv_path} failed: {err[-3000:]}")
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    data["process_wall_s"] = wall
    data["peak_rss_kib"] = usage.ru_maxrss  # KiB on Linux
    return data


@dataclass
class SizeResult:
    rows: int
    postcodes: int
    csv_mb: float
    index_mb: float
    imp: dict[str, Any]
    lookup: dict[str, Any]


def run_properties(args: argparse.Namespace, tmp: Path) -> tuple[list[SizeResult], float]:
    work = tmp / "properties"
    work.mkdir()
    targets = [(n, work / f"properties_{n}.csv") for n in args.sizes]
    log(f"[properties] generating {', '.join(f'{n:,}' for n in args.sizes)} rows ...")
    t0 = time.perf_counter()
    postcodes = generate_property_files(targets)
    gen_s = time.perf_counter() - t0
    log(f"[properties] generated in {gen_s:.1f}s")
    results: list[SizeResult] = []
    cpu = None if args.no_pin else SERVER_CPU
    try:
        for n, csv_path in targets:
            idx_dir = work / f"index_{n}"
            index_path = index_file(idx_dir, csv_path)  # where the adaptor looks
            log(f"[properties] importing {n:,} rows in a fresh process ...")
            imp = run_import_child(csv_path, index_path, cpu)
            log(
                f"[properties] {n:,}: build_index {imp['seconds']:.1f}s, peak RSS "
                f"{imp['peak_rss_kib'] / 1024:.0f} MiB"
            )
            sample = random.Random(n).choices(postcodes[n], k=args.lookups)
            sample_path = work / f"sample_{n}.json"
            sample_path.write_text(json.dumps(sample))
            code = (
                "import sys; from bench.national_properties import child_lookup; "
                "child_lookup(sys.argv[1], sys.argv[2], sys.argv[3])"
            )
            lookup = run_lookup_child(code, index_path, csv_path, sample_path, cpu)
            log(
                f"[properties] {n:,}: by_postcode p50 {lookup['by_postcode']['p50']:.3f} ms "
                f"p99 {lookup['by_postcode']['p99']:.3f} ms"
            )
            results.append(
                SizeResult(
                    rows=imp["rows"],
                    postcodes=len(postcodes[n]),
                    csv_mb=csv_path.stat().st_size / 1e6,
                    index_mb=index_path.stat().st_size / 1e6,
                    imp=imp,
                    lookup=lookup,
                )
            )
            shutil.rmtree(idx_dir, ignore_errors=True)
            csv_path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results, gen_s


def properties_markdown(results: list[SizeResult], gen_s: float, lookups: int) -> tuple[str, dict]:
    lines = [
        "| properties | postcodes | CSV MB | index MB | build_index s | process s "
        "| peak RSS MiB | lookup p50 / p99 ms (by_postcode) | SQL only p50 / p99 ms "
        "| adaptor.addresses() p50 / p99 ms | rows per lookup | other load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        b, s, a = r.lookup["by_postcode"], r.lookup["sql_only"], r.lookup["adaptor"]
        lines.append(
            f"| {r.rows:,} | {r.postcodes:,} | {r.csv_mb:,.0f} | {r.index_mb:,.0f} "
            f"| {r.imp['seconds']:.1f} | {r.imp['process_wall_s']:.1f} "
            f"| {r.imp['peak_rss_kib'] / 1024:,.0f} | {b['p50']:.3f} / {b['p99']:.3f} "
            f"| {s['p50']:.3f} / {s['p99']:.3f} | {a['p50']:.3f} / {a['p99']:.3f} "
            f"| {r.lookup['rows_per_lookup']:.1f} | {r.lookup['other_load']:.2f} |"
        )
    big, small = results[-1], results[0]
    growth50 = big.lookup["by_postcode"]["p50"] / small.lookup["by_postcode"]["p50"]
    growth99 = big.lookup["by_postcode"]["p99"] / small.lookup["by_postcode"]["p99"]
    goals = {
        "import": (
            max(r.imp["seconds"] for r in results) < GOAL_IMPORT_S,
            f"{big.imp['seconds']:.1f} s for {big.rows:,} properties "
            f"({big.imp['process_wall_s']:.1f} s with interpreter start)",
        ),
        "memory": (
            max(r.imp["peak_rss_kib"] * 1024 for r in results) < GOAL_PEAK_BYTES,
            f"{big.imp['peak_rss_kib'] / 1024:,.0f} MiB peak RSS for {big.rows:,} "
            f"(interpreter and imports before the import: "
            f"{big.imp['rss_before_kib'] / 1024:.0f} MiB)",
        ),
        "lookup_p99": (
            max(r.lookup["by_postcode"]["p99"] for r in results) < GOAL_LOOKUP_P99_MS,
            f"{big.lookup['by_postcode']['p99']:.3f} ms at {big.rows:,} "
            f"(adaptor.addresses(): {big.lookup['adaptor']['p99']:.3f} ms)",
        ),
        "flat": (
            growth50 <= FLAT_FACTOR,
            f"p50 x{growth50:.2f}, p99 x{growth99:.2f} from {small.rows:,} to {big.rows:,} "
            f"properties (criterion: p50 within x{FLAT_FACTOR})",
        ),
    }
    note = (
        f"\nGenerated in one streaming pass in {gen_s:.0f} s (native layout, {OPEN_POSTCODES} "
        "postcodes interleaved at a time so a postcode's rows are spread through the file as in "
        "an export ordered by property id). Each import ran `build_index` in a fresh "
        "process; peak RSS is that process's `ru_maxrss` from `wait4` (the interpreter and "
        "imports included). Lookups: "
        f"{lookups:,} random existing postcodes per size, after the import (the index file "
        "is in the OS page cache), in a fresh process; *SQL only* is the same query without "
        "building `Property` objects; *other load*: cores used by other processes while the "
        "lookups ran (noise).\n"
    )
    return "\n".join(lines) + "\n" + note, goals

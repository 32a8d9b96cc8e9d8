"""What ``repairs-gateway check`` checks, beyond the schema of each council file: every file
the configuration names exists and parses (property files too: duplicate ids named with their
lines, bad postcodes counted with their lines), and, with ``--connect``, that each backend
answers a harmless call (start: credentials, WSDL, session; then its health check: a read).

Problems are ``ConfigProblem``s (file, line, key, plain words) kept per council, so each
council's summary line says whether anything about it is wrong.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, ConfigProblem, council_files, load_council_file
from gateway.councils import Council, build_council
from gateway.textfiles import TextFileError, read_text
from repairs_gateway_sdk.model import PropertyKind
from repairs_gateway_sdk.postcodes import normalise_postcode

SHOW_LINES = 10  # line numbers listed per kind of problem
NATIVE_REQUIRED = ("property_id", "address_line_1", "postcode")
EXPORT = ("placereference", "addressline", "postcode")
KINDS = {k.value for k in PropertyKind}


def _lines(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:SHOW_LINES]))
    more = f", ... ({len(lines)} in all)" if len(lines) > SHOW_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


@dataclass
class PropertyScan:
    """What a property file holds: rows read, rows that would be imported, skipped by reason."""

    path: Path
    layout: str = "unknown"  # native | export
    encoding: str = "utf-8"
    rows: int = 0
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[ConfigProblem] = field(default_factory=list)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return f"{self.path.name}: {self.rows} rows read, {self.imported} to import" + (
            f", skipped: {skipped}" if skipped else ""
        )


def scan_property_file(path: Path, key: str, kinds: set[str] | None = None) -> PropertyScan:
    """Read a CSV fallback property file the way its adaptor imports it, reporting every
    problem at its line: what the import would refuse (fatal) and what it would skip."""
    scan = PropertyScan(path)
    fname = str(path)
    try:
        decoded = read_text(path)
    except FileNotFoundError:
        scan.problems.append(ConfigProblem(fname, None, key, "property file not found"))
        return scan
    except OSError as exc:
        scan.problems.append(ConfigProblem(fname, None, key, f"cannot read: {exc.strerror}"))
        return scan
    except TextFileError as exc:
        scan.problems.append(ConfigProblem(fname, exc.line, key, exc.message))
        return scan
    scan.encoding = decoded.encoding
    if decoded.note:
        scan.problems.append(ConfigProblem(fname, None, key, decoded.note, fatal=False))
    reader = csv.reader(io.StringIO(decoded.text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        scan.problems.append(ConfigProblem(fname, 1, key, "empty file: no header row"))
        return scan
    except csv.Error as exc:
        scan.problems.append(ConfigProblem(fname, 1, key, f"not a CSV file: {exc}"))
        return scan
    kinds = kinds or KINDS
    first_line: dict[str, int] = {}
    dupes: dict[str, list[int]] = {}
    bad_postcode: list[int] = []
    no_id: list[int] = []
    bad_kind: dict[str, list[int]] = {}
    short: list[int] = []
    export = set(EXPORT) <= set(header)
    if export:
        scan.layout = "export"
        ix = [header.index(c) for c in EXPORT]
    else:
        scan.layout = "native"
        missing = [c for c in NATIVE_REQUIRED if c not in header]
        if missing:
            scan.problems.append(
                ConfigProblem(
                    fname,
                    1,
                    key,
                    f"missing column(s) {', '.join(missing)} in the header row (expected "
                    f"property_id,address_line_1,...,postcode or {','.join(EXPORT)})",
                )
            )
            return scan
        col = {n: header.index(n) for n in header}
    try:
        for rec in reader:
            line = reader.line_num
            if not rec or not any(c.strip() for c in rec):
                continue
            scan.rows += 1
            if export:
                if len(rec) <= max(ix):
                    short.append(line)
                    continue
                pid, _addr, pc = (rec[i].strip() for i in ix)
                if not pid:
                    scan.skipped["no PlaceReference"] += 1
                    no_id.append(line)
                    continue
                if normalise_postcode(pc) is None:
                    scan.skipped["bad postcode"] += 1
                    bad_postcode.append(line)
                    continue
                kind = "dwelling"
            else:

                def get(name: str, rec: list[str] = rec) -> str:
                    i = col.get(name)
                    return rec[i].strip() if i is not None and i < len(rec) else ""

                pid = get("property_id")
                if not pid:
                    no_id.append(line)
                    continue
                if normalise_postcode(get("postcode")) is None:
                    bad_postcode.append(line)
                    continue
                kind = get("kind").lower() or "dwelling"
                if kind not in kinds:
                    bad_kind.setdefault(kind, []).append(line)
                    continue
            if pid in first_line:
                dupes.setdefault(pid, [first_line[pid]]).append(line)
                continue
            first_line[pid] = line
            scan.imported += 1
    except csv.Error as exc:
        scan.problems.append(
            ConfigProblem(fname, reader.line_num, key, f"not readable as CSV: {exc}")
        )
    if short:
        scan.problems.append(
            ConfigProblem(fname, short[0], key, f"too few columns on {_lines(short)}")
        )
    if export:
        if bad_postcode:
            scan.problems.append(
                ConfigProblem(
                    fname,
                    bad_postcode[0],
                    key,
                    f"{len(bad_postcode)} row(s) skipped for a postcode that is not a UK "
                    f"postcode: {_lines(bad_postcode)}",
                    fatal=False,
                )
            )
        if no_id:
            scan.problems.append(
                ConfigProblem(
                    fname,
                    no_id[0],
                    key,
                    f"{len(no_id)} row(s) skipped with no PlaceReference: {_lines(no_id)}",
                    fatal=False,
                )
            )
    else:
        if bad_postcode:
            scan.problems.append(
                ConfigProblem(
                    fname,
                    bad_postcode[0],
                    key,
                    f"{len(bad_postcode)} row(s) without a valid UK postcode (the import "
                    f"refuses the file): {_lines(bad_postcode)}",
                )
            )
        if no_id:
            scan.problems.append(
                ConfigProblem(
                    fname,
                    no_id[0],
                    key,
                    f"{len(no_id)} row(s) with no property_id: {_lines(no_id)}",
                )
            )
        for kind, lines in sorted(bad_kind.items()):
            scan.problems.append(
                ConfigProblem(
                    fname,
                    lines[0],
                    key,
                    f"unknown kind {kind!r} (one of: {', '.join(sorted(kinds))}) "
                    f"on {_lines(lines)}",
                )
            )
    for pid, lines in sorted(dupes.items(), key=lambda x: x[1][1])[:SHOW_LINES]:
        scan.problems.append(
            ConfigProblem(fname, lines[1], key, f"duplicate property id {pid!r} on {_lines(lines)}")
        )
    if len(dupes) > SHOW_LINES:
        scan.problems.append(
            ConfigProblem(fname, None, key, f"{len(dupes)} duplicate property ids in all")
        )
    return scan


def _looks_like_url(value: str) -> bool:
    return "://" in value


def file_options(council: Council) -> list[tuple[str, str, Path]]:
    """(adaptor, option, path) for each local file an adaptor's options name: options ending
    in ``_file`` or ``wsdl`` whose value is not a URL, relative to the config directory."""
    out: list[tuple[str, str, Path]] = []
    base = council.loaded.path.parent
    for name, entry in council.config.adaptors.items():
        for opt, value in entry.options.items():
            if not isinstance(value, str) or not value or _looks_like_url(value):
                continue
            if opt.endswith("_file") or opt.endswith("wsdl"):
                path = Path(value)
                out.append((name, opt, path if path.is_absolute() else base / path))
    return out


@dataclass
class CouncilCheck:
    id: str
    path: Path
    council: Council | None = None
    problems: list[ConfigProblem] = field(default_factory=list)
    scans: list[PropertyScan] = field(default_factory=list)

    @property
    def fatal(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.fatal]

    def summary(self) -> str:
        adaptors = len(self.council.adaptors) if self.council else 0
        codes = len(self.council.table) if self.council else 0
        fatal = len(self.fatal)
        warned = len(self.problems) - fatal
        if fatal:
            mark = f"{fatal} problem(s)" + (f", {warned} warning(s)" if warned else "")
        else:
            mark = "ok" + (f" ({warned} warning(s))" if warned else "")
        return f"{self.id}: {adaptors} adaptor(s), {codes} SoR codes - {mark}"


def check_councils(
    config_dir: Path, data_dir: Path
) -> tuple[list[CouncilCheck], list[ConfigProblem]]:
    """Every council file in ``config_dir``, each with its own problems; and problems that
    belong to no council (the directory itself)."""
    try:
        paths = council_files(config_dir)
    except ConfigError as exc:
        return [], exc.problems
    if not paths:
        return [], [ConfigProblem(str(config_dir), None, "", "no council *.yaml files found")]
    checks: list[CouncilCheck] = []
    for path in paths:
        check = CouncilCheck(path.stem, path)
        checks.append(check)
        try:
            loaded = load_council_file(path)
        except ConfigError as exc:
            check.problems.extend(exc.problems)
            continue
        council, problems = build_council(loaded, data_dir, None)
        check.council = council
        check.problems.extend(problems)
        file_problems, scans = check_adaptor_files(council)
        check.problems.extend(file_problems)
        check.scans.extend(scans)
    return checks, []


def check_adaptor_files(council: Council) -> tuple[list[ConfigProblem], list[PropertyScan]]:
    """Every local file the council's adaptors name exists; property files are read as the
    import would read them (also run by a configuration reload, gateway/reload.py)."""
    problems: list[ConfigProblem] = []
    scans: list[PropertyScan] = []
    loaded = council.loaded
    for name, opt, file in file_options(council):
        key = f"adaptors.{name}.options.{opt}"
        line = loaded.line_of("adaptors", name, "options", opt)
        if not file.is_file():
            problems.append(ConfigProblem(str(loaded.path), line, key, f"file {file} not found"))
            continue
        adaptor = council.adaptors.get(name)
        if adaptor is not None and Path(getattr(adaptor, "csv_path", "")) == file:
            scan = scan_property_file(file, key)
            scans.append(scan)
            problems.extend(scan.problems)
    return problems, scans


# -- check --connect --------------------------------------------------------------------------


@dataclass
class ConnectResult:
    council: str
    adaptor: str
    type: str
    ok: bool
    ms: float
    reason: str = ""


async def connect_one(council: Council, name: str, timeout: float) -> ConnectResult:
    """Start the adaptor (credentials, WSDL, session) and run its health check (one cheap
    read), within ``timeout``; then close it."""
    from gateway.diagnose import reason

    adaptor = council.adaptors[name]
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await adaptor.start()
            await adaptor.check_health()
        result = ConnectResult(council.id, name, adaptor.type_name, True, 0)
    except TimeoutError as exc:
        result = ConnectResult(council.id, name, adaptor.type_name, False, 0, reason(exc, timeout))
    except Exception as exc:  # noqa: BLE001 - every failure is reported in the table
        result = ConnectResult(council.id, name, adaptor.type_name, False, 0, reason(exc))
    result.ms = (time.monotonic() - t0) * 1000
    try:
        await adaptor.close()
    except Exception:  # noqa: BLE001, S110 - closing after a check; nothing to report
        pass
    return result


async def connect_all(
    councils: list[Council],
    timeout: float,
    progress: Callable[[int, int, ConnectResult], None] | None = None,
    concurrency: int = 4,
) -> list[ConnectResult]:
    gate = asyncio.Semaphore(concurrency)
    todo = [(c, n) for c in councils for n in c.adaptors]
    done = 0

    async def one(council: Council, name: str) -> ConnectResult:
        nonlocal done
        async with gate:
            result = await connect_one(council, name, timeout)
        done += 1
        if progress is not None:
            progress(done, len(todo), result)
        return result

    return list(await asyncio.gather(*(one(c, n) for c, n in todo)))


def render_table(results: list[ConnectResult]) -> str:
    head = ("COUNCIL", "ADAPTOR", "TYPE", "RESULT", "TIME", "REASON")
    rows = [
        (r.council, r.adaptor, r.type, "ok" if r.ok else "FAILED", f"{r.ms:.0f} ms", r.reason)
        for r in sorted(results, key=lambda r: (r.council, r.adaptor))
    ]
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(5)]

    def line(cells: tuple[Any, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells[:5], widths, strict=True)) + (
            "  " + str(cells[5]) if cells[5] else ""
        )

    return "\n".join(line(r).rstrip() for r in [head, *rows])

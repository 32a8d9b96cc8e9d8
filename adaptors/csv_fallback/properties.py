"""The property file and its postcode index.

The CSV is imported once into an SQLite index file (rebuilt when the CSV changes), so a
national-scale file (millions of rows) loads in bounded memory and a postcode lookup is one
indexed read whose cost does not grow with the number of properties.

Two input layouts are accepted (detected from the header):

- native: ``property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,
  postcode,kind,parent_id,repairable,reason``
- the common HMS export: ``PlaceReference,AddressLine,PostCode`` (``AddressLine`` is split on
  commas; every row is a dwelling that can be repaired online)
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repairs_gateway_sdk.model import Property, PropertyKind
from repairs_gateway_sdk.postcodes import normalise_postcode

SCHEMA_VERSION = "2"
BATCH = 20_000
NATIVE = [
    "property_id",
    "uprn",
    "address_line_1",
    "address_line_2",
    "address_line_3",
    "address_line_4",
    "postcode",
    "kind",
    "parent_id",
    "repairable",
    "reason",
]
EXPORT = ["placereference", "addressline", "postcode"]
FALSE_WORDS = {"n", "no", "false", "0"}


class PropertyFileError(ValueError):
    pass


class ImportProgress(Protocol):
    """Told how an import goes (the gateway's ``gateway.progress.Progress`` is one): rows
    imported, rows skipped by reason (fixed words, never a row's content), how far through
    the file (bytes)."""

    def imported(self, n: int = 1) -> None: ...

    def skipped(self, reason: str, n: int = 1) -> None: ...

    def position(self, done: int, total: int) -> None: ...


def file_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM) or, when the first 64 KiB are not UTF-8,
    Windows-1252 (Excel's CSV on a UK Windows PC). ``repairs-gateway check`` reads the same
    (gateway/textfiles.py) and refuses, with the line, what none of them can read."""
    with path.open("rb") as fh:
        head = fh.read(65_536)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the sample
            return "windows-1252"
    return "utf-8"


def _rows(
    path: Path, progress: ImportProgress | None = None
) -> Iterator[tuple[str, str | None, str, str, str, str | None, int, str | None]]:
    with path.open(newline="", encoding=file_encoding(path)) as fh:
        size, raw = path.stat().st_size, fh.buffer  # bytes taken from the file: the time left
        tell: Callable[[], int] = getattr(raw, "tell")  # noqa: B009 - typeshed lacks it
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise PropertyFileError(f"{path}: empty file") from None
        if {"placereference", "addressline", "postcode"} <= set(header):
            ix = [header.index(c) for c in EXPORT]
            for n, rec in enumerate(reader, start=2):
                if progress is not None and not n % BATCH:
                    progress.position(tell(), size)
                if not rec:
                    continue
                try:
                    pid, addr, pc = (rec[i].strip() for i in ix)
                except IndexError:
                    raise PropertyFileError(f"{path}:{n}: too few columns") from None
                postcode = normalise_postcode(pc)
                if not pid or postcode is None:
                    if progress is not None:
                        progress.skipped("no PlaceReference" if not pid else "bad postcode")
                    continue
                lines = [p.strip() for p in addr.split(",") if p.strip()]
                yield pid, None, json.dumps(lines), postcode, "dwelling", None, 1, None
            return
        missing = [c for c in ("property_id", "address_line_1", "postcode") if c not in header]
        if missing:
            raise PropertyFileError(
                f"{path}:1: missing column(s) {', '.join(missing)}; expected {','.join(NATIVE)} "
                f"or {','.join(EXPORT)}"
            )
        col = {name: header.index(name) for name in NATIVE if name in header}

        def get(rec: list[str], name: str) -> str:
            i = col.get(name)
            return rec[i].strip() if i is not None and i < len(rec) else ""

        kinds = {k.value for k in PropertyKind}
        for n, rec in enumerate(reader, start=2):
            if progress is not None and not n % BATCH:
                progress.position(tell(), size)
            if not rec:
                continue
            postcode = normalise_postcode(get(rec, "postcode"))
            pid = get(rec, "property_id")
            if not pid or postcode is None:
                raise PropertyFileError(f"{path}:{n}: property_id and a valid postcode are needed")
            kind = get(rec, "kind").lower() or "dwelling"
            if kind not in kinds:
                raise PropertyFileError(f"{path}:{n}: kind: unknown kind {kind!r}")
            lines = [get(rec, f"address_line_{i}") for i in range(1, 5)]
            online = 0 if get(rec, "repairable").lower() in FALSE_WORDS else 1
            yield (
                pid,
                get(rec, "uprn") or None,
                json.dumps([x for x in lines if x]),
                postcode,
                kind,
                get(rec, "parent_id") or None,
                online,
                get(rec, "reason") or None,
            )


def fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{SCHEMA_VERSION}:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def index_file(index_dir: Path, csv_path: Path) -> Path:
    """Where the index of ``csv_path`` is built: one per property file, named after the
    file and its full path, so every council whose adaptor reads the same file shares it."""
    resolved = csv_path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.stem)[:64]
    return index_dir / f"{stem}-{digest}.sqlite"


def build_index(csv_path: Path, index_path: Path, progress: ImportProgress | None = None) -> int:
    """Import the CSV into a fresh index file, atomically replacing the old one. ``progress``
    is told the rows imported (a batch at a time), skipped (by reason) and the bytes read."""
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_suffix(f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-200000;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE properties (id TEXT NOT NULL, uprn TEXT, lines TEXT NOT NULL,
              postcode TEXT NOT NULL, kind TEXT NOT NULL, parent_id TEXT, online INTEGER NOT NULL,
              reason TEXT);
            """
        )
        count = 0
        batch: list[tuple[object, ...]] = []
        size = csv_path.stat().st_size
        for row in _rows(csv_path, progress):
            batch.append(row)
            if len(batch) >= BATCH:
                conn.executemany("INSERT INTO properties VALUES (?,?,?,?,?,?,?,?)", batch)
                count += len(batch)
                if progress is not None:
                    progress.imported(len(batch))
                batch.clear()
        if batch:
            conn.executemany("INSERT INTO properties VALUES (?,?,?,?,?,?,?,?)", batch)
            count += len(batch)
            if progress is not None:
                progress.imported(len(batch))
        if progress is not None:
            progress.position(size, size)
        conn.execute("CREATE INDEX ix_postcode ON properties(postcode)")
        conn.execute("CREATE UNIQUE INDEX ix_id ON properties(id)")
        conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint(csv_path),))
        conn.commit()
    except sqlite3.IntegrityError:
        dupes = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM properties GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5"
            )
        ]
        conn.close()
        tmp.unlink(missing_ok=True)
        named = f": {', '.join(map(repr, dupes))}" if dupes else ""
        raise PropertyFileError(
            f"{csv_path}: duplicate property_id{named} (`repairs-gateway check` lists the lines)"
        ) from None
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, index_path)
    return count


def index_is_current(csv_path: Path, index_path: Path) -> bool:
    if not index_path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(row) and row[0] == fingerprint(csv_path)


class PropertyIndex:
    """Read-only lookups; one connection per thread (SQLite connections are not shared).
    Shared by every adaptor reading the same file (``shared_index``): it holds only what the
    file says."""

    def __init__(self, index_path: Path) -> None:
        self.path = index_path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    def warm(self) -> None:
        """Open this thread's connection now (the event loop's, before a first call)."""
        self._conn()

    @staticmethod
    def _property(row: tuple[object, ...]) -> Property:
        pid, uprn, lines, postcode, kind, parent, online, reason = row
        eligible = bool(online)
        return Property(
            id=str(pid),
            uprn=str(uprn) if uprn else None,
            address_lines=json.loads(str(lines)),
            postcode=str(postcode),
            kind=PropertyKind(str(kind)),
            parent_id=str(parent) if parent else None,
            online_repairs=eligible,
            ineligible_reason=None
            if eligible
            else (str(reason) if reason else "repairs here cannot be reported online"),
        )

    def by_postcode(self, postcode: str) -> list[Property]:
        return list(self._by_postcode(postcode))

    def by_id(self, property_id: str) -> Property | None:
        return self._by_id(property_id)

    # The index file never changes while open (a rebuild writes a new file), so answers are
    # cached: Property objects are immutable. Bounded: a national file has ~2M postcodes.
    @functools.lru_cache(maxsize=65_536)  # noqa: B019 - one index per adaptor, lives as long
    def _by_postcode(self, postcode: str) -> tuple[Property, ...]:
        rows = (
            self._conn()
            .execute(
                "SELECT id,uprn,lines,postcode,kind,parent_id,online,reason FROM properties "
                "WHERE postcode=? ORDER BY rowid",
                (postcode,),
            )
            .fetchall()
        )
        return tuple(self._property(r) for r in rows)

    @functools.lru_cache(maxsize=65_536)  # noqa: B019
    def _by_id(self, property_id: str) -> Property | None:
        row = (
            self._conn()
            .execute(
                "SELECT id,uprn,lines,postcode,kind,parent_id,online,reason FROM properties "
                "WHERE id=?",
                (property_id,),
            )
            .fetchone()
        )
        return self._property(row) if row else None

    def count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM properties").fetchone()[0])


# -- the indexes open in this process, shared by every adaptor that reads the same file ------
# An adaptor starting looks its file up here: two ``stat`` calls when its file and index are
# the ones already open (no SQLite file opened, nothing imported); otherwise, in a worker
# thread and one at a time per index file, the index is checked (``index_is_current``),
# rebuilt if the file changed, and opened. A re-import (``repairs-gateway properties import``
# replaces the index file) or a changed property file is seen by the next adaptor to start
# (a reload, a restart), as before; an adaptor already serving keeps the index it opened.

Signature = tuple[int, int, int]  # st_ino, st_size, st_mtime_ns


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class _Opened:
    source: Signature  # the property file when it was checked
    stored: Signature  # the index file opened
    index: PropertyIndex


@dataclass(frozen=True)
class _Refused:
    """A property file that could not be imported: refused again, without reading it, until
    it changes (every council on a broken national file would otherwise re-read it)."""

    source: Signature
    message: str


_SHARED: dict[Path, _Opened | _Refused] = {}
_BUILDING: dict[Path, threading.Lock] = {}
_GUARD = threading.Lock()


def open_index(csv_path: Path, index_path: Path) -> PropertyIndex | None:
    """The open index of ``csv_path`` at ``index_path`` when both files are still the ones it
    was opened from; None when it has to be checked (``shared_index``). Raises
    ``PropertyFileError`` for an unchanged file already refused. Never blocks on an import."""
    entry = _SHARED.get(index_path)
    if entry is None or entry.source != signature(csv_path):
        return None
    if isinstance(entry, _Refused):
        raise PropertyFileError(entry.message)
    return entry.index if entry.stored == signature(index_path) else None


def shared_index(csv_path: Path, index_path: Path) -> PropertyIndex:
    """The index of ``csv_path`` at ``index_path``, imported if it is not current, opened
    once per process and index file (blocking: call it in a worker thread). Raises
    ``FileNotFoundError`` when the property file is missing, ``PropertyFileError`` when it
    cannot be imported."""
    with _GUARD:
        lock = _BUILDING.setdefault(index_path, threading.Lock())
    with lock:
        found = open_index(csv_path, index_path)
        if found is not None:
            return found
        source = signature(csv_path)  # before reading it: a change meanwhile is seen next time
        if source is None:
            raise FileNotFoundError(str(csv_path))
        try:
            if not index_is_current(csv_path, index_path):
                build_index(csv_path, index_path)
        except PropertyFileError as exc:
            _SHARED[index_path] = _Refused(source, str(exc))
            raise
        stored = signature(index_path)
        if stored is None:  # removed at once by someone else: checked again next time
            raise FileNotFoundError(str(index_path))
        index = PropertyIndex(index_path)
        _SHARED[index_path] = _Opened(source, stored, index)
        return index

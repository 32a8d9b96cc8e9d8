"""SoR mapping tables.

A table is a CSV file with a header row. Columns (case-insensitive):

- ``sor_code`` (required): the council's code. NHF 6-digit codes (``373049``), prefixed codes
  (``N373049``) and local codes (``20060020``, ``DES5R003``) may be mixed. Codes are matched
  case-insensitively with surrounding spaces ignored.
- ``trade`` (required): a trade name (``plumbing``) or schedule code (``PL``).
- ``size``: small | medium | large | extra_large (default small).
- ``duration_minutes``: default from the size (60/120/240/480).
- ``priority``: immediate | emergency | urgent | normal, or I/E/U/N. Empty: the caller chooses.
- ``description``: free text for council staff.
- ``enabled``: yes/no (default yes). A disabled code is refused with a clear reason.

Loading reports every problem with its line number: duplicate codes, unknown trades, bad sizes,
bad durations and priorities.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from repairs_gateway_sdk.model import (
    DEFAULT_SIZE_MINUTES,
    JobSize,
    Priority,
    Trade,
    parse_priority,
    parse_trade,
)

TRUE_WORDS = {"", "y", "yes", "true", "1", "enabled"}
FALSE_WORDS = {"n", "no", "false", "0", "disabled"}


@dataclass(frozen=True)
class SorMapping:
    code: str
    trade: Trade
    size: JobSize
    duration_minutes: int
    priority: Priority | None
    description: str
    enabled: bool


@dataclass(frozen=True)
class LineError:
    source: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}"
        return (
            f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"
        )


class MappingTableError(ValueError):
    def __init__(self, errors: list[LineError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def normalise_code(code: str) -> str:
    return code.strip().upper()


class SorTable:
    def __init__(self, rows: dict[str, SorMapping], source: str = "<table>") -> None:
        self._rows = rows
        self.source = source

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rows.values())

    def get(self, code: str) -> SorMapping | None:
        return self._rows.get(normalise_code(code))


def parse_table(text: str, source: str = "<table>") -> tuple[SorTable, list[LineError]]:
    rows: dict[str, SorMapping] = {}
    first_line: dict[str, int] = {}
    errors: list[LineError] = []
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        return SorTable({}, source), [LineError(source, 1, None, "empty file: no header row")]
    header = {name.strip().lower(): name for name in reader.fieldnames if name}
    for required in ("sor_code", "trade"):
        if required not in header:
            errors.append(LineError(source, 1, required, "missing required column"))
    if errors:
        return SorTable({}, source), errors

    def cell(record: dict[str, str | None], column: str) -> str:
        original = header.get(column)
        value = record.get(original) if original else None
        return (value or "").strip()

    for record in reader:
        line = reader.line_num
        code = normalise_code(cell(record, "sor_code"))
        if not code:
            errors.append(LineError(source, line, "sor_code", "empty code"))
            continue
        if code in rows or code in first_line:
            errors.append(
                LineError(
                    source,
                    line,
                    "sor_code",
                    f"duplicate code {code!r} (first on line {first_line[code]})",
                )
            )
            continue
        first_line[code] = line
        row_errors: list[LineError] = []
        trade_text = cell(record, "trade")
        try:
            trade = parse_trade(trade_text)
        except ValueError:
            row_errors.append(LineError(source, line, "trade", f"unknown trade {trade_text!r}"))
        size_text = cell(record, "size") or "small"
        try:
            size = JobSize(size_text.lower())
        except ValueError:
            allowed = ", ".join(s.value for s in JobSize)
            row_errors.append(
                LineError(source, line, "size", f"bad size {size_text!r} (one of {allowed})")
            )
            size = JobSize.SMALL
        duration_text = cell(record, "duration_minutes")
        duration = DEFAULT_SIZE_MINUTES[size]
        if duration_text:
            if not duration_text.isdigit() or not 0 < int(duration_text) <= 24 * 60:
                row_errors.append(
                    LineError(
                        source,
                        line,
                        "duration_minutes",
                        f"bad duration {duration_text!r} (whole minutes, 1-1440)",
                    )
                )
            else:
                duration = int(duration_text)
        priority_text = cell(record, "priority")
        priority: Priority | None = None
        if priority_text:
            try:
                priority = parse_priority(priority_text)
            except ValueError:
                row_errors.append(
                    LineError(source, line, "priority", f"bad priority {priority_text!r}")
                )
        enabled_text = cell(record, "enabled").lower()
        if enabled_text not in TRUE_WORDS | FALSE_WORDS:
            row_errors.append(LineError(source, line, "enabled", f"bad flag {enabled_text!r}"))
        if row_errors:
            errors.extend(row_errors)
            continue
        rows[code] = SorMapping(
            code=code,
            trade=trade,
            size=size,
            duration_minutes=duration,
            priority=priority,
            description=cell(record, "description"),
            enabled=enabled_text not in FALSE_WORDS,
        )
    return SorTable(rows, source), errors


def read_table_text(path: Path) -> str:
    """The table's text, saved by whatever (UTF-8 with or without BOM, UTF-16, Windows-1252:
    see gateway/textfiles.py); ``MappingTableError`` naming the line when it is not text."""
    from gateway.textfiles import TextFileError, read_text

    try:
        return read_text(path).text
    except TextFileError as exc:
        raise MappingTableError([LineError(str(path), exc.line or 1, None, exc.message)]) from None


def load_table(path: Path) -> SorTable:
    """Load a table, raising ``MappingTableError`` listing every bad line."""
    table, errors = parse_table(read_table_text(path), source=str(path))
    if errors:
        raise MappingTableError(errors)
    return table

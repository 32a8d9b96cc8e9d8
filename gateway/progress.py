"""Progress and counts for long commands (imports, exports), on standard error.

On a terminal, a live line redrawn in place (``\\r``) at most every ``interval`` seconds:
rows so far, the rate and, when the size of the work is known, the time left. Otherwise
(a pipe, a log file, a CI job) nothing until the end. Either way the work ends with one
summary line: rows read, imported (or written), skipped by reason, and the time taken::

    properties demo:demo_csv: 1,204,311 rows read, 1,204,011 imported, 300 skipped
    (250 bad postcode, 50 no PlaceReference) in 14.2 s

Only counts and fixed reasons are shown: never a row's content (addresses, names).

    with Progress("export demo", verb="written", total=n) as p:
        for row in rows:
            ...
            p.imported()

Also usable as the property import's progress (adaptors/csv_fallback/properties.py
``ImportProgress``): ``imported(n)``, ``skipped(reason)``, ``position(done, total)``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from types import TracebackType
from typing import TextIO

INTERVAL_SECONDS = 0.2


def _n(value: int) -> str:
    return f"{value:,}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    def __init__(
        self,
        what: str,
        *,
        verb: str = "imported",
        total: int | None = None,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.what = what
        self.verb = verb
        self.total = total  # rows expected, when known (the time left is then shown)
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.interval = interval
        self.done_rows = 0  # imported / written
        self.skips: Counter[str] = Counter()
        self.fraction: float | None = None  # of the work done, from position()
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0
        self.finished = False

    # -- counting -------------------------------------------------------------------------
    @property
    def read(self) -> int:
        return self.done_rows + sum(self.skips.values())

    def imported(self, n: int = 1) -> None:
        self.done_rows += n
        self._maybe_draw()

    def skipped(self, reason: str, n: int = 1) -> None:
        self.skips[reason] += n
        self._maybe_draw()

    def position(self, done: int, total: int) -> None:
        """How far through the work (e.g. bytes of the file read): gives the time left."""
        if total > 0:
            self.fraction = min(1.0, max(0.0, done / total))
        self._maybe_draw()

    # -- output ---------------------------------------------------------------------------
    def _left(self, elapsed: float) -> float | None:
        fraction = self.fraction
        if self.total:
            fraction = min(1.0, self.read / self.total)
        if not fraction or elapsed <= 0:
            return None
        return elapsed * (1 - fraction) / fraction

    def live_line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.read / elapsed if elapsed > 0 else 0.0
        of = f"/{_n(self.total)}" if self.total else ""
        parts = [f"{self.what}: {_n(self.read)}{of} rows read, {_n(self.done_rows)} {self.verb}"]
        if self.skips:
            parts.append(f"{_n(sum(self.skips.values()))} skipped")
        parts.append(f"{_n(int(rate))} rows/s")
        left = self._left(elapsed)
        if left is not None:
            parts.append(f"{_duration(left)} left")
        return ", ".join(parts)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        line = f"{self.what}: {_n(self.read)} rows read, {_n(self.done_rows)} {self.verb}"
        if self.skips:
            reasons = ", ".join(f"{_n(n)} {why}" for why, n in sorted(self.skips.items()))
            line += f", {_n(sum(self.skips.values()))} skipped ({reasons})"
        else:
            line += ", 0 skipped"
        return f"{line} in {_duration(elapsed)}"

    def _maybe_draw(self) -> None:
        if not self.tty:
            return
        at = time.monotonic()
        if at - self._drawn_at < self.interval:
            return
        self._drawn_at = at
        self._draw(self.live_line())

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def finish(self, note: str | None = None) -> str:
        """End the work: the summary line (replacing the live line on a terminal)."""
        if self.finished:
            return self.summary()
        self.finished = True
        text = self.summary() + (f" ({note})" if note else "")
        if self.tty and self._width:
            self._draw(text)
            self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        return text

    def __enter__(self) -> Progress:
        if self.tty:
            self._draw(self.live_line())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish("stopped by an error" if exc_type is not None else None)

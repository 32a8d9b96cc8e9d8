"""structlog JSON logs with a request id. A final processor scrubs anything that looks like
personal data (postcodes, phone numbers, emails) as a second line of defence: the first is
that the code never logs bodies, query strings or addresses."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import sys
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog

_POSTCODE = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s\"']+@[^@\s\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.-])\+?\d[\d ()-]{8,}\d")
SAFE_KEYS = {
    "timestamp",
    "level",
    "event",
    "request_id",
    "duration_ms",
    "status",
    "logger",
    "method",
    "route",
}  # the access log's own fields: templates, never raw paths


def _scrub(value: str) -> str:
    value = _EMAIL.sub("[email]", value)
    value = _POSTCODE.sub("[postcode]", value)
    return _PHONE.sub("[phone]", value)


def scrub_personal_data(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for k, v in list(event.items()):
        if k not in SAFE_KEYS and isinstance(v, str):
            event[k] = _scrub(v)
    return event


class _AccessLog:
    """The access log line written directly: the same JSON, fields and order as structlog's
    chain below renders it (``timestamp`` ISO UTC, ``level``, ``event`` and the bound
    ``request_id``), without its per-call logger, context copy and processor calls (about
    20 µs a request). Every field is one of ``SAFE_KEYS`` (the scrubber leaves them as they
    are): a method, a route template, a status, a duration, an id the gateway checked.

    Inside a running event loop the lines of the requests answered in one turn of the loop
    are written together at its next turn (one write and flush, not one per request: the
    flush was a quarter of the line's cost); outside one, at once."""

    def __init__(self, enabled: bool, stream: Any) -> None:
        self.enabled = enabled
        self.stream = stream  # None: whatever sys.stdout is when the line is written
        self._printer: structlog.PrintLogger | None = None
        self._file: Any = None
        self._pending: list[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # whose next turn writes them
        self._second = -1
        self._stamp = ""

    def write(self, method: str, route: str, status: int, duration_ms: float, rid: str) -> None:
        if not self.enabled:
            return
        # json.dumps of the same dict (structlog's renderer), written out: each value is a
        # JSON string, an int or a float (json writes floats as repr does)
        line = (
            f'{{"method": {_ascii(method)}, "route": {_ascii(route)}, "status": {int(status)}, '
            f'"duration_ms": {float(duration_ms)!r}, "event": "request", '
            f'"request_id": {_ascii(rid)}, "level": "info", "timestamp": "{self._now()}"}}'
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # lines a loop left (it ended before its next turn) come first
            self._print(line)
            return
        pending = self._pending
        if pending is not None:
            if self._loop is loop:
                pending.append(line)
                return
            self.flush()  # left by a loop that ended before its next turn: never lost
        self._pending, self._loop = [line], loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        pending, self._pending, self._loop = self._pending, None, None
        if pending:
            self._print("\n".join(pending))

    def _print(self, text: str) -> None:
        file = self.stream if self.stream is not None else sys.stdout
        if file is not self._file or self._printer is None:
            self._printer, self._file = structlog.PrintLogger(file), file  # its lock per file
        self._printer.msg(text)

    def _now(self) -> str:
        """``datetime.now(UTC).isoformat()`` with ``Z`` for ``+00:00`` (TimeStamper's
        format), the date and time of day written once a second."""
        t = time.time()
        second = int(t)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        micro = round((t - second) * 1e6)
        if micro == 0 or micro >= 1_000_000:  # isoformat leaves out a zero fraction
            return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
        return f"{self._stamp}.{micro:06d}Z"


_ascii = json.encoder.encode_basestring_ascii  # a JSON string as json.dumps writes it
_access: _AccessLog | None = None  # set by configure(); before it, structlog's defaults


@atexit.register
def _flush_at_exit() -> None:
    """What the last turn of the process's event loop left, if the loop ended first."""
    if _access is not None:
        _access.flush()


def access_line(method: str, route: str, status: int, duration_ms: float, rid: str) -> None:
    """One access log line ("event": "request") for an answered request."""
    if _access is not None:
        _access.write(method, route, status, duration_ms, rid)
    else:
        structlog.get_logger("gateway.access").info(
            "request", method=method, route=route, status=status, duration_ms=duration_ms
        )


def configure(level: str = "info", stream: Any = None) -> None:
    logging.basicConfig(
        format="%(message)s",
        stream=stream or sys.stdout,
        level=getattr(logging, level.upper(), logging.INFO),
    )
    # Client libraries log full request URLs at INFO (query strings can hold postcodes).
    for noisy in ("httpx", "httpcore", "zeep", "urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub_personal_data,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        # without a stream, whatever sys.stdout is when a line is written (a CLI run inside
        # a test harness swaps it, and a closed stream must never fail a request)
        logger_factory=(
            structlog.PrintLoggerFactory(stream)
            if stream is not None
            else (lambda *_args: structlog.PrintLogger(sys.stdout))
        ),
        cache_logger_on_first_use=False,
    )
    global _access
    _access = _AccessLog(getattr(logging, level.upper(), logging.INFO) <= logging.INFO, stream)

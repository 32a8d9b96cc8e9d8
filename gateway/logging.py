"""structlog JSON logs with a request id. A final processor scrubs anything that looks like
personal data (postcodes, phone numbers, emails) as a second line of defence: the first is
that the code never logs bodies, query strings or addresses."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
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

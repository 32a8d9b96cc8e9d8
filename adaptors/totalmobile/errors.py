"""Totalmobile answers -> the gateway's error taxonomy."""

from __future__ import annotations

from typing import Any

import httpx

from repairs_gateway_sdk.errors import BackendRejected, BackendUnavailable
from repairs_gateway_sdk.replies import Reply

SYSTEM = "Totalmobile"
Answer = Reply | httpx.Response


class OutcomeUnknown(BackendUnavailable):
    """A write was sent but no usable answer came back: it may or may not have been applied."""


def retry_after(resp: Answer, default: int) -> int:
    """Seconds from a ``Retry-After`` header (delta-seconds form), at least 1."""
    value = resp.headers.get("Retry-After", "")
    try:
        return max(1, int(float(value)))
    except ValueError:
        return default


def error_detail(resp: Answer) -> tuple[str | None, str]:
    """(code, message) from a Totalmobile JSON error body; tolerant of the shapes seen."""
    try:
        body: Any = resp.json()
    except ValueError:
        return None, f"HTTP {resp.status_code}"
    if isinstance(body, dict):
        errors = body.get("errors") or body.get("Errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = {k.lower(): v for k, v in errors[0].items()}
            code = first.get("code")
            msg = first.get("message") or first.get("detail") or code or "refused"
            return (str(code) if code else None), str(msg)
        lowered = {k.lower(): v for k, v in body.items()}
        code = lowered.get("code") or lowered.get("error")
        msg = (
            lowered.get("message")
            or lowered.get("error_description")
            or lowered.get("detail")
            or lowered.get("title")
            or code
            or "refused"
        )
        return (str(code) if code else None), str(msg)
    return None, f"HTTP {resp.status_code}"


def rejection(resp: Answer, what: str) -> BackendRejected:
    # the message is the vendor's free text and can echo what was sent: only its code travels
    code, _message = error_detail(resp)
    suffix = f" [{code}]" if code else ""
    return BackendRejected(f"{SYSTEM} refused to {what}{suffix}")


def unavailable(resp: Answer, what: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"{SYSTEM} could not {what} (HTTP {resp.status_code})", retry_after=retry_after(resp, 30)
    )

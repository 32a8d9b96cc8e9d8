"""The one builder of RFC 9457 problem details: every error body the gateway writes (API
answers, middleware refusals, answers kept for idempotent replays) comes from here, so they
can never drift apart. The catalogue of types is gateway/api/contract.py."""

from __future__ import annotations

from typing import Any

from repairs_gateway_sdk.errors import GatewayError

BASE = "https://repairs-gateway.dev/problems/"


def problem_details(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def from_error(exc: GatewayError, *, instance: str | None = None) -> dict[str, Any]:
    """The problem a ``GatewayError`` answers with (its field named in ``errors``)."""
    errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    return problem_details(
        exc.status, exc.slug, exc.title, exc.detail, instance=instance, errors=errors
    )


def invalid(field: str, message: str) -> dict[str, Any]:
    """422 naming one field, as every validation error is written."""
    return problem_details(
        422,
        "invalid-input",
        "Invalid input",
        f"check these fields: {field}",
        errors=[{"field": field, "message": message}],
    )

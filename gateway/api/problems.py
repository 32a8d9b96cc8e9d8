"""RFC 9457 problem details for every error, naming the field at fault."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.problemdetails import problem_details
from repairs_gateway_sdk.errors import BackendUnavailable, GatewayError, RateLimited

PROBLEM = "application/problem+json"
log = structlog.get_logger("gateway.api")


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_details(status, slug, title, detail, instance=instance, errors=errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    if loc and loc[0] == "header" and len(loc) > 1:
        # one spelling for a header everywhere: as HTTP documents write it (Idempotency-Key)
        return "-".join(w.capitalize() for w in str(loc[1]).replace("_", "-").split("-"))
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    return ".".join(parts) or "body"


_ALLOW_CACHE: dict[int, list[tuple[re.Pattern[str], list[str]]]] = {}


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the published API defines for a path (for the Allow header of a 405)."""
    table = _ALLOW_CACHE.get(id(app))
    if table is None:
        table = []
        for template, ops in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{regex}$"), sorted(m.upper() for m in ops)))
        _ALLOW_CACHE[id(app)] = table
    for compiled, methods in table:
        if compiled.match(path):
            return methods
    return []


def unhandled_log_fields(exc: BaseException) -> dict[str, str]:
    """What is logged of an unexpected error: its type and the innermost frame in the
    project's own code. Never the message: exception messages can carry submitted values."""
    tb, where = exc.__traceback__, "?"
    while tb is not None:
        path = PurePath(tb.tb_frame.f_code.co_filename)
        if "site-packages" not in path.parts and path.suffix == ".py":
            where = f"{path.parent.name}/{path.name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return {"error_type": type(exc).__name__, "where": where}


def _count_rate_limited(request: Request) -> None:
    """gateway_rate_limited_total{council}: the council of the path when it is one served
    (a closed set), else "unknown" ("none" for paths without one, e.g. /metrics)."""
    from gateway.metrics import rate_limited

    council = request.path_params.get("council")
    councils = getattr(getattr(request.app.state, "runtime", None), "councils", {})
    rate_limited("none" if council is None else council if council in councils else "unknown")


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        headers = {}
        if isinstance(exc, BackendUnavailable | RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, RateLimited):
            _count_rate_limited(request)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        return problem(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            instance=request.url.path,
            errors=errors,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": "body", "message": "the body is not valid JSON"}
            if e.get("type") == "json_invalid"
            else {"field": _field(tuple(e["loc"])), "message": e["msg"]}
            for e in exc.errors()
        ]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem(
            422,
            "invalid-input",
            "Invalid input",
            f"check these fields: {fields}",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not even decode: bad JSON, as ever
            return problem(
                422,
                "invalid-input",
                "Invalid input",
                "check these fields: body",
                instance=request.url.path,
                errors=[{"field": "body", "message": "the body is not valid JSON"}],
            )
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return problem(
            exc.status_code,
            f"http-{exc.status_code}",
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Behind RequestContext (always, in the served app) an unexpected error is answered
        # there, with the request id; this is the answer for the app used without it.
        log.error("request.unhandled", **unhandled_log_fields(exc))
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the gateway failed unexpectedly; nothing you submitted was lost",
            instance=request.url.path,
        )

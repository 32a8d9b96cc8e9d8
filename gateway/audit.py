"""The audit trail: one event for every write and every admin action.

Each event says who (the API key's id, never its secret), for which council, what (an action
name such as ``repairs.create`` or ``outbox.replay``), the reference it concerned and the
outcome. Never personal data: no names, addresses, phone numbers, descriptions or bodies.
Events are logged (``audit`` events, structlog) and kept in ``audit_events`` for the status
page (gateway/status/).

Writes over HTTP are recorded by ``AuditMiddleware`` (method, route template, status);
admin actions record their own richer event with ``record()``, which the middleware then
does not repeat.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, delete, insert, select

from gateway.storage.models import AuditEvent
from gateway.storage.prepared import run
from repairs_gateway_sdk.timeutil import now

if TYPE_CHECKING:
    from gateway.storage.database import Database

log = structlog.get_logger("gateway.audit")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEEP_EVENTS = 100_000  # older events are pruned (they stay in the logs)

# set per request by AuditMiddleware; the key store notes the caller's key id in it
_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "audit_request", default=None
)


def note_principal(key_id: str) -> None:
    ctx = _request.get()
    if ctx is not None:
        ctx["key_id"] = key_id


def _safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:200]


async def record(
    database: Database,
    action: str,
    *,
    key_id: str | None,
    council: str | None,
    reference: str | None = None,
    outcome: str = "ok",
    log_it: bool = True,
    **detail: Any,
) -> None:
    """Log and store one audit event. ``detail`` takes counts, ids and fixed words only.
    ``log_it=False``: stored only (the command line, whose standard output is its answer)."""
    ctx = _request.get()
    if ctx is not None:
        ctx["audited"] = True
    clean = {k: _safe(v) for k, v in detail.items()}
    if log_it:
        log.info(
            "audit",
            action=action,
            key_id=key_id,
            council=council,
            reference=reference,
            outcome=outcome,
            **clean,
        )
    row = {
        "at": now(),
        "action": action,
        "key_id": key_id,
        "council": council,
        "reference": reference,
        "outcome": outcome,
        "detail": clean,
    }
    try:
        await database.write(partial(_store, row))  # on SQLite one hand-off to its thread
    except Exception as exc:  # noqa: BLE001 - the log line above is the record of last resort
        log.warning("audit.store_failed", action=action, error_type=type(exc).__name__)


_INSERT = insert(AuditEvent)


def _store(row: dict[str, Any], conn: Connection) -> None:
    run(conn, _INSERT, row)


async def recent(database: Database, council: str | None, limit: int = 50) -> list[AuditEvent]:
    async with database.session() as s:
        q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if council is not None:
            q = q.where(AuditEvent.council == council)
        return list((await s.execute(q)).scalars())


async def prune(database: Database, keep: int = KEEP_EVENTS) -> None:
    async with database.session() as s:
        newest = (
            await s.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        ).scalar_one_or_none()
    if newest is not None and newest > keep:
        async with database.transaction() as s:
            await s.execute(delete(AuditEvent).where(AuditEvent.id <= newest - keep))


def _council_of(path: str) -> str | None:
    parts = path.split("/")
    # /v1/councils/{council}/..., /hro/{council}/..., /status/{council}/...
    if len(parts) > 3 and parts[1] == "v1" and parts[2] == "councils":
        return parts[3][:64] or None
    if len(parts) > 2 and parts[1] in ("hro", "status"):
        return parts[2][:64] or None
    return None


class AuditMiddleware:
    """Records every write request (POST, PUT, PATCH, DELETE under /v1, /hro, /status) once
    its answer has been sent: the route template (never the raw path), the key id, the
    council, the reference (from the path or the Location header) and the status code."""

    def __init__(self, app: Any, database_of: Callable[[], Database]) -> None:
        self.app = app
        self.database_of = database_of

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") not in WRITE_METHODS
            or not scope.get("path", "").startswith(("/v1/", "/hro/", "/status/"))
        ):
            await self.app(scope, receive, send)
            return
        ctx: dict[str, Any] = {}
        token = _request.set(ctx)
        answer: dict[str, Any] = {}

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for k, v in message.get("headers") or []:
                    if k.lower() == b"location":
                        answer["location"] = v.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            _request.reset(token)
            if not ctx.get("audited") and "status" in answer:
                await self._record(scope, ctx, answer)

    async def _record(self, scope: Any, ctx: dict[str, Any], answer: dict[str, Any]) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "(unrouted)"
        params = scope.get("path_params") or {}
        reference = params.get("reference")
        if reference is None and "location" in answer:
            reference = answer["location"].rstrip("/").rsplit("/", 1)[-1]
        status = int(answer["status"])
        await record(
            self.database_of(),
            f"http.{scope['method']} {template}",
            key_id=ctx.get("key_id"),
            council=params.get("council") or _council_of(scope.get("path", "")),
            reference=str(reference)[:64] if reference else None,
            outcome="ok" if status < 400 else f"refused-{status}",
            status=status,
        )

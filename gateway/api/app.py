"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

from gateway import __version__, tracing
from gateway.api import (
    admin,
    admin_ops,
    admin_reload,
    contract,
    health,
    notify_callback,
    problems,
    routes,
)
from gateway.api.middleware import Edge
from gateway.hro import mount as hro
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.status import router as status_router
from gateway.tracing import TraceRequests
from repairs_gateway_sdk.errors import NotFound

DESCRIPTION = """One standard repairs API in front of councils' legacy systems.

Every call is scoped to a council and needs an API key (`Authorization: Bearer rgw_...`).
Times are ISO 8601 in Europe/London with their offset. Errors are RFC 9457 problem details
naming the field at fault; every problem `type` is described at `/problems/{slug}` on the
gateway. Booking is safe to retry with the same `Idempotency-Key`. Each answer carries
`X-Request-ID` and the key's `RateLimit`/`RateLimit-Policy`; 429 and 503 carry `Retry-After`.

Versioning: `/v1` changes only by adding (fields, operations, problem types); a client must
ignore fields it does not know. Anything to be removed is first announced on the operation with
`Deprecation` and `Sunset` headers (RFC 9745, RFC 8594) at least six months before; a breaking
change is a new `/v2` served alongside `/v1`."""


OPERATION_IDS = {
    "/health": "getHealth",
    "/health/live": "getLiveness",
    "/health/ready": "getReadiness",
}


def readable_operation_id(method: str, generated: str) -> str:
    """A route without an explicit ``operation_id`` gets FastAPI's long one
    (``triage_v1_councils__council__triage_get``); publish ``getTriage`` instead."""
    if "_v1_" not in generated:
        return generated
    words = generated.split("_v1_", 1)[0].split("_")
    verb = {"get": "get", "post": "create", "patch": "update", "put": "put", "delete": "delete"}
    if words[0] in ("get", "list", "create", "update", "delete", "cancel"):
        verb_word, rest = words[0], words[1:]
    else:
        verb_word, rest = verb.get(method, method), words
    return verb_word + "".join(w.capitalize() for w in rest)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        # Everything loaded at start-up lives for the process: keep it out of the garbage
        # collector's generations (long gen2 pauses showed as p99 spikes under load).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPIOffline(
        title="Repairs gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry (on the global providers) stays off: the gateway's
        # traces are its own (gateway/tracing.py: its own provider, no paths or queries) and
        # so are its metrics; left on, it asked the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = rt
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.include_router(admin_ops.router)  # keys and outbox actions, audited
    app.include_router(admin_reload.router)  # POST /v1/admin/reload (gateway/reload.py)
    app.include_router(health.router)  # also /metrics (admin key), see gateway/api/health.py
    app.include_router(hro.router)  # the Housing Repairs Online facade, see gateway/hro/
    app.include_router(notify_callback.router)  # Notify receipts; a repair's messages

    def openapi_with_security() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "rgw_... key from `repairs-gateway keys create`",
                }
            }
            schema["components"].setdefault("schemas", {}).update(contract.problem_schemas())
            for path, ops in schema.get("paths", {}).items():
                if path in OPERATION_IDS:
                    ops["get"]["operationId"] = OPERATION_IDS[path]
                if path.startswith("/v1/"):
                    for method, op in ops.items():
                        op["operationId"] = readable_operation_id(method, op["operationId"])
                        op["security"] = [{"apiKey": []}]
                        # FastAPI adds a 422 of its own (HTTPValidationError): the gateway's
                        # 422 is a problem, already declared
                        for status, response in op.get("responses", {}).items():
                            content = response.get("content", {})
                            if status == "422":
                                content.pop("application/json", None)
            schema["components"]["schemas"].pop("HTTPValidationError", None)
            schema["components"]["schemas"].pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi_with_security  # type: ignore[method-assign]

    @app.get("/problems", include_in_schema=False)
    async def problem_types() -> HTMLResponse:
        return HTMLResponse(contract.problems_page())

    @app.get("/problems/{slug}", include_in_schema=False)
    async def problem_type(slug: str) -> HTMLResponse:
        if slug not in contract.BY_SLUG:
            raise NotFound(f"no problem type {slug!r}", field="slug")
        return HTMLResponse(contract.problems_page(slug))

    app.include_router(status_router)  # /status for council IT, see gateway/status/
    # One middleware for every concern at the edge (gateway/api/middleware.py): the audit
    # trail of writes, error counts per council (the live councils dict: a configuration
    # reload reaches it, as it reaches CORS through its hook), CORS, reload's request count
    # (replaced adaptors wait for older requests), the request context; it answers the two
    # hot routes itself.
    app.add_middleware(
        Edge,
        max_body_bytes=settings.max_body_bytes,
        budget_seconds=settings.request_budget_seconds,
        large_bodies=hro.LARGE_BODIES,
        requests=rt.reloader.requests,
        councils=rt.councils,
        cors_origins={c.id: c.config.cors_origins for c in rt.councils.values()},
        cors_reload_hooks=rt.reloader.cors_hooks,
        database_of=lambda: rt.database,
        hot_routes=[
            r
            for r in routes.router.routes
            if getattr(r, "endpoint", None) in (routes.addresses, routes.appointments)
        ],
        direct_posts=[
            (r, routes.repair_request, routes.create_repair_directly)
            for r in routes.router.routes
            if getattr(r, "endpoint", None) is routes.create_repair
        ],
    )
    if tracing.ENABLED:  # OpenTelemetry (gateway/tracing.py): outermost; absent when off
        app.add_middleware(TraceRequests)
    return app

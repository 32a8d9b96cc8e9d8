"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from gateway import __version__
from gateway.api import admin, health, problems, routes
from gateway.api.middleware import CouncilCors, RequestContext
from gateway.runtime import Runtime
from gateway.settings import Settings

DESCRIPTION = """One standard repairs API in front of councils' legacy systems.

Every call is scoped to a council and needs an API key (`Authorization: Bearer rgw_...`).
Times are ISO 8601 in Europe/London with their offset. Errors are RFC 9457 problem details
naming the field at fault."""


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
        title="Repairs gateway", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.runtime = rt
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.include_router(health.router)  # also /metrics (admin key), see gateway/api/health.py

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
            for path, ops in schema.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi_with_security  # type: ignore[method-assign]

    app.add_middleware(
        CouncilCors, origins={c.id: c.config.cors_origins for c in rt.councils.values()}
    )
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        budget_seconds=settings.request_budget_seconds,
    )
    return app

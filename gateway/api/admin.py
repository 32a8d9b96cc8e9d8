"""Admin routes (role ``admin``): the migration report and the outbox, per council."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from gateway.api.routes import (
    PROBLEMS,
    CouncilDep,
    PrincipalDep,
    known_query_params_only,
    runtime,
)
from gateway.auth import Principal
from gateway.outbox import list_items

router = APIRouter(
    prefix="/v1/councils/{council}/admin",
    tags=["admin"],
    dependencies=[Depends(known_query_params_only)],
)


def admin(p: PrincipalDep) -> Principal:
    p.check_admin()
    return p


AdminDep = Annotated[Principal, Depends(admin)]


@router.get(
    "/migration-report",
    responses=PROBLEMS,
    summary="Per capability: share of calls per adaptor, errors, latency, shadow agreement",
)
async def migration_report(request: Request, council: CouncilDep, _a: AdminDep) -> dict[str, Any]:
    from gateway.report import migration_report as build

    rt = runtime(request)
    await rt.flush_stats()
    return await build(rt.database, council.id)


@router.get("/outbox", responses=PROBLEMS, summary="Side effects waiting, done or dead")
async def outbox(
    request: Request,
    council: CouncilDep,
    _a: AdminDep,
    state: Annotated[str | None, Query(pattern="^(pending|done|dead)$")] = None,
) -> list[dict[str, Any]]:
    items = await list_items(runtime(request).database, state, 200)
    return [
        {
            "id": i.id,
            "kind": i.kind,
            "reference": i.payload.get("reference"),
            "state": i.state,
            "attempts": i.attempts,
            "last_error": i.last_error,
        }
        for i in items
        if i.council == council.id
    ]

"""Admin routes (role ``admin``): the migration report and the outbox, per council."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from gateway.api.routes import PROBLEMS, Access, AccessDep
from gateway.outbox import list_items

router = APIRouter(prefix="/v1/councils/{council}/admin", tags=["admin"])


async def admin(a: AccessDep) -> Access:
    a.principal.check_admin()
    return a


AdminDep = Annotated[Access, Depends(admin)]


@router.get(
    "/migration-report",
    responses=PROBLEMS,
    operation_id="getMigrationReport",
    summary="Per capability: share of calls per adaptor, errors, latency, shadow agreement",
)
async def migration_report(a: AdminDep) -> dict[str, Any]:
    from gateway.report import migration_report as build

    await a.runtime.flush_stats()
    return await build(a.runtime.database, a.council.id)


@router.get(
    "/outbox",
    responses=PROBLEMS,
    operation_id="listOutboxItems",
    summary="Side effects waiting, done or dead",
)
async def outbox(
    a: AdminDep,
    state: Annotated[str | None, Query(pattern="^(pending|done|dead)$")] = None,
) -> list[dict[str, Any]]:
    council = a.council
    items = await list_items(a.runtime.database, state, 200, council=council.id)
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
    ]

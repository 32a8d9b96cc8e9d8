"""Standard-API routes that come with the HRO work: a council's triage tree for any front
end, and residents' photos for staff (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from gateway.api.admin import AdminDep
from gateway.api.routes import PROBLEMS, AccessDep
from gateway.hro.photos import photo_meta
from gateway.storage.models import RepairPhoto
from mappings.triage import REPAIR_TYPES, option_to_dict
from repairs_gateway_sdk.errors import NotFound

router = APIRouter(prefix="/v1/councils/{council}", tags=["repairs"])


@router.get(
    "/triage",
    responses=PROBLEMS,
    operation_id="getTriage",
    summary="The council's repair diagnosis questions, per repair type, with their outcomes",
)
async def triage(
    a: AccessDep,
    repair_type: Annotated[
        Literal["tenant", "communal", "leasehold"] | None,
        Query(description="one tree only (default: every type the council has)"),
    ] = None,
) -> dict[str, Any]:
    tree_set = a.council.triage
    if tree_set is None:
        raise NotFound(f"council {a.council.id!r} has no triage table", field="council")
    names = [repair_type] if repair_type else [t for t in REPAIR_TYPES if tree_set.tree(t)]
    trees: dict[str, Any] = {}
    for name in names:
        tree = tree_set.tree(name)
        if tree is None:
            raise NotFound(f"council {a.council.id!r} has no {name} triage", field="repair_type")
        trees[name] = [option_to_dict(o) for o in tree.options]
    return {"council": a.council.id, "repair_types": trees}


Reference = Annotated[str, Path(max_length=32)]


@router.get(
    "/admin/repairs/{reference}/photos",
    responses=PROBLEMS,
    operation_id="listRepairPhotos",
    tags=["admin"],
    summary="Photos residents sent with a repair (metadata)",
)
async def photos(a: AdminDep, reference: Reference) -> list[dict[str, Any]]:
    r = await a.runtime.bookings.get_repair(a.council, reference)
    async with a.runtime.database.session() as s:
        rows = (
            await s.execute(
                select(RepairPhoto)
                .where(RepairPhoto.council == a.council.id, RepairPhoto.reference == r.reference)
                .order_by(RepairPhoto.id)
            )
        ).scalars()
        return [photo_meta(p) for p in rows]


@router.get(
    "/admin/repairs/{reference}/photos/{photo_id}",
    responses={**PROBLEMS, 200: {"content": {"image/jpeg": {}, "image/png": {}}}},
    operation_id="getRepairPhoto",
    tags=["admin"],
    summary="One photo (the image itself)",
)
async def photo(
    a: AdminDep, reference: Reference, photo_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Response:
    r = await a.runtime.bookings.get_repair(a.council, reference)
    async with a.runtime.database.session() as s:
        p = await s.get(RepairPhoto, photo_id)
    if p is None or p.council != a.council.id or p.reference != r.reference:
        raise NotFound(f"no photo {photo_id} for repair {r.reference}", field="photo_id")
    return Response(
        p.data,
        media_type=p.content_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )

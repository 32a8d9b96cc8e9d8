"""Admin actions (role ``admin``), per council: API keys (list, create, rotate, revoke) and dead
outbox items (replay, drop). Each action is audited (gateway/audit.py).

A council admin sees and acts on the keys that serve its council and no council it does not
administer (a key for ``*`` only by a ``*`` admin). New keys are for this council only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway import audit
from gateway.api.admin import AdminDep
from gateway.api.contract import responses
from gateway.api.routes import Access
from gateway.auth import ROLES, key_state
from gateway.outbox import drop, replay
from gateway.storage.models import ApiKey
from repairs_gateway_sdk.errors import InvalidInput, NotFound
from repairs_gateway_sdk.timeutil import now

router = APIRouter(prefix="/v1/councils/{council}/admin", tags=["admin"])
LOCAL = responses(401, 403, 404, 422, 429)
LOCAL_BODY = responses(401, 403, 404, 415, 422, 429)
KeyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,32}$", description="a key's id")]
ItemId = Annotated[int, Path(ge=1, le=2**62, description="an outbox item's id")]


class KeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "3f9c2a1b7d4e",
                    "name": "tenant portal",
                    "councils": ["demo"],
                    "role": "frontend",
                    "rate_per_minute": 600,
                    "state": "active",
                    "created_at": "2026-12-01T09:00:00+00:00",
                    "expires_at": None,
                    "last_used_at": "2026-12-03T10:41:00+00:00",
                    "replaces": None,
                }
            ]
        }
    )

    key_id: str
    name: str
    councils: list[str]
    role: str
    rate_per_minute: int
    state: str = Field(description="active | expiring | expired | revoked")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    replaces: str | None = Field(description="the key this one rotated")


class NewKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "rgw_3f9c2a1b7d4e_...",
                    "key_id": "3f9c2a1b7d4e",
                    "note": "shown once; stored only as a hash",
                }
            ]
        }
    )

    key: str = Field(description="the key itself: shown once, stored only as a hash")
    key_id: str
    note: str = "shown once; stored only as a hash"
    old_key_expires_at: datetime | None = None


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "tenant portal", "role": "frontend", "rate_per_minute": 600}]
        },
    )

    name: str = Field(min_length=1, max_length=128)
    role: str = Field("frontend", pattern="^(frontend|admin)$")
    rate_per_minute: int = Field(600, ge=1, le=1_000_000)
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="none: never expires")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"overlap_days": 7}]})

    overlap_days: float = Field(
        7, ge=0, le=365, description="how long the old key keeps working alongside the new"
    )


class Done(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 1}]})

    count: int


def _visible(a: Access, row: ApiKey) -> bool:
    mine = a.principal.councils
    theirs = set(row.councils)
    if a.council.id not in theirs and "*" not in theirs:
        return False
    return "*" in mine or theirs <= mine


def key_out(row: ApiKey) -> KeyOut:
    return KeyOut(
        key_id=row.key_id,
        name=row.name,
        councils=list(row.councils),
        role=row.role,
        rate_per_minute=row.rate_per_minute,
        state=key_state(row),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        replaces=row.replaces,
    )


async def _visible_key(a: Access, key_id: str) -> ApiKey:
    row = await a.runtime.keys.get(key_id)
    if row is None or not _visible(a, row):
        raise NotFound(f"no key {key_id!r} for this council", field="key_id")
    return row


@router.get("/keys", responses=LOCAL, operation_id="listKeys", summary="This council's API keys")
async def list_keys(a: AdminDep) -> list[KeyOut]:
    return [key_out(r) for r in await a.runtime.keys.list() if _visible(a, r)]


@router.post(
    "/keys",
    status_code=201,
    responses=LOCAL_BODY,
    operation_id="createKey",
    summary="Create a key for this council (shown once)",
)
async def create_key(a: AdminDep, body: KeyIn) -> JSONResponse:
    if body.role not in ROLES:  # pragma: no cover - the pattern refuses it first
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    expires = now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    clear = await a.runtime.keys.create(
        body.name, [a.council.id], body.role, body.rate_per_minute, expires_at=expires
    )
    key_id = clear.split("_", 2)[1]
    await audit.record(
        a.runtime.database,
        "keys.create",
        key_id=a.principal.key_id,
        council=a.council.id,
        reference=key_id,
        role=body.role,
    )
    out = NewKeyOut(key=clear, key_id=key_id)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.post(
    "/keys/{key_id}/rotate",
    status_code=201,
    responses=LOCAL_BODY,
    operation_id="rotateKey",
    summary="A second key for the same client; the old one is phased out",
)
async def rotate_key(a: AdminDep, key_id: KeyId, body: RotateIn | None = None) -> JSONResponse:
    await _visible_key(a, key_id)
    overlap = timedelta(days=body.overlap_days if body is not None else 7.0)
    try:
        clear, old = await a.runtime.keys.rotate(key_id, overlap)
    except ValueError as exc:
        raise NotFound(str(exc), field="key_id") from None
    new_id = clear.split("_", 2)[1]
    await audit.record(
        a.runtime.database,
        "keys.rotate",
        key_id=a.principal.key_id,
        council=a.council.id,
        reference=key_id,
        new_key=new_id,
    )
    out = NewKeyOut(key=clear, key_id=new_id, old_key_expires_at=old.expires_at)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.post(
    "/keys/{key_id}/revoke",
    responses=LOCAL,
    operation_id="revokeKey",
    summary="Revoke a key (every replica refuses it within seconds)",
)
async def revoke_key(a: AdminDep, key_id: KeyId) -> Done:
    await _visible_key(a, key_id)
    count = 1 if await a.runtime.keys.revoke(key_id) else 0
    await audit.record(
        a.runtime.database,
        "keys.revoke",
        key_id=a.principal.key_id,
        council=a.council.id,
        reference=key_id,
        outcome="ok" if count else "already-revoked",
    )
    return Done(count=count)


async def outbox_action(a: Access, action: str, item_id: int) -> Done:
    """Replay or drop one dead item of the council (audited); 404 when there is no such
    dead item."""
    db = a.runtime.database
    if action == "replay":
        count = await replay(db, [item_id], council=a.council.id)
        a.runtime.worker.wake()
    else:
        count = await drop(db, [item_id], council=a.council.id)
    await audit.record(
        db,
        f"outbox.{action}",
        key_id=a.principal.key_id,
        council=a.council.id,
        reference=str(item_id),
        outcome="ok" if count else "not-dead",
    )
    if not count:
        raise NotFound(f"no dead outbox item {item_id} for this council", field="item_id")
    return Done(count=count)


@router.post(
    "/outbox/{item_id}/replay",
    responses=LOCAL,
    operation_id="replayOutboxItem",
    summary="Queue a dead outbox item again",
)
async def replay_item(a: AdminDep, item_id: ItemId) -> Done:
    return await outbox_action(a, "replay", item_id)


@router.post(
    "/outbox/{item_id}/drop",
    responses=LOCAL,
    operation_id="dropOutboxItem",
    summary="Give up on a dead outbox item (kept, marked dropped)",
)
async def drop_item(a: AdminDep, item_id: ItemId) -> Done:
    return await outbox_action(a, "drop", item_id)

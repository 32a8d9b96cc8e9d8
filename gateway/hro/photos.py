"""Residents' photos (N&S sends a JPEG or PNG of up to 10 MB as raw base64).

Checked from the bytes (not the file name), stored with the repair in the database (so every
replica sees it), never logged, shown to staff through the admin API, purged after the
council's ``photo_retention_days`` (a delayed outbox item, and any overdue ones whenever a
photo is stored), and passed to the housing system when the repair's works-order adaptor
implements ``repairs_gateway_sdk.adaptor.AttachmentSink``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select, update

from gateway.outbox import Retry, enqueue
from gateway.storage.models import Repair, RepairPhoto
from repairs_gateway_sdk.adaptor import Attachment, AttachmentSink
from repairs_gateway_sdk.errors import InvalidInput
from repairs_gateway_sdk.timeutil import now

if TYPE_CHECKING:
    from gateway.councils import Council
    from gateway.hro.config import HroConfig
    from gateway.outbox import OutboxWorker
    from gateway.runtime import Runtime
    from gateway.service import Gateway
    from gateway.storage.models import OutboxItem

log = structlog.get_logger("gateway.hro.photos")
MAX_PHOTO_BYTES = 10 * 1024 * 1024
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


@dataclass(frozen=True)
class Photo:
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def decode_photo(text: str) -> Photo:
    """Raw base64 (a ``data:`` prefix is tolerated) of a JPEG or PNG of at most 10 MB."""
    field = "description.base64img"
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > (MAX_PHOTO_BYTES * 4) // 3 + 8:
        raise InvalidInput("the photo is larger than 10 MB", field=field)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the photo is not valid base64", field=field) from None
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput("the photo is larger than 10 MB", field=field)
    kind = sniff(data)
    if kind is None:
        raise InvalidInput("the photo must be a JPEG or PNG image", field=field)
    return Photo(kind, data)


async def store_photo(
    rt: Runtime, council: Council, hro: HroConfig, reference: str, photo: Photo
) -> None:
    """Keep the photo with the repair (once per repair and content), schedule its purge and,
    where the works-order adaptor takes attachments, its delivery."""
    digest = photo.sha256
    db = rt.database
    async with db.session() as s:
        exists = (
            await s.execute(
                select(RepairPhoto.id).where(
                    RepairPhoto.council == council.id,
                    RepairPhoto.reference == reference,
                    RepairPhoto.sha256 == digest,
                )
            )
        ).first()
        repair = (
            await s.execute(
                select(Repair).where(Repair.council == council.id, Repair.reference == reference)
            )
        ).scalar_one_or_none()
    if exists is not None:
        return
    retention = timedelta(days=hro.photo_retention_days)
    async with db.transaction() as s:
        row = RepairPhoto(
            council=council.id,
            reference=reference,
            content_type=photo.content_type,
            size=len(photo.data),
            sha256=digest,
            data=photo.data,
            purge_after=now() + retention,
        )
        s.add(row)
        await s.flush()
        enqueue(
            s,
            council.id,
            "photo.purge",
            {"reference": reference, "photo_id": row.id},
            delay_seconds=retention.total_seconds(),
        )
        sink = repair.works_order_adaptor if repair is not None else None
        if sink and isinstance(council.adaptors.get(sink), AttachmentSink):
            enqueue(s, council.id, "photo.attach", {"reference": reference, "photo_id": row.id})
    await purge_overdue(rt)
    rt.worker.wake()


async def purge_overdue(rt: Runtime) -> int:
    async with rt.database.transaction() as s:
        result = await s.execute(delete(RepairPhoto).where(RepairPhoto.purge_after <= now()))
    return int(getattr(result, "rowcount", 0) or 0)


def register_outbox(worker: OutboxWorker, gateway: Gateway) -> None:
    """The photo handlers, registered with the outbox worker (called by ``Bookings``)."""

    async def purge(item: OutboxItem) -> None:
        async with gateway.database.transaction() as s:
            await s.execute(
                delete(RepairPhoto).where(
                    RepairPhoto.id == item.payload["photo_id"],
                    RepairPhoto.purge_after <= now() + timedelta(minutes=1),
                )
            )
            # anything else overdue goes too (a purge item lost with a restore, say)
            await s.execute(delete(RepairPhoto).where(RepairPhoto.purge_after <= now()))

    async def attach(item: OutboxItem) -> None:
        council = gateway.councils.get(item.council)
        if council is None:
            return
        async with gateway.database.session() as s:
            repair = (
                await s.execute(
                    select(Repair).where(
                        Repair.council == item.council,
                        Repair.reference == item.payload["reference"],
                    )
                )
            ).scalar_one_or_none()
            photo = await s.get(RepairPhoto, item.payload["photo_id"])
        if repair is None or photo is None or photo.attached_at is not None:
            return  # purged, or already delivered
        if not repair.works_order_adaptor:
            return
        if not repair.works_order_ref:
            raise Retry(30)  # the works order is still being raised
        adaptor = council.attachment_sink(repair.works_order_adaptor)  # guarded
        if adaptor is None:
            return
        ext = EXTENSIONS.get(photo.content_type, "bin")
        await adaptor.attach(
            repair.works_order_ref,
            Attachment(
                reference=repair.reference,
                content_type=photo.content_type,
                filename=f"{repair.reference}-{photo.id}.{ext}",
                data=photo.data,
            ),
        )
        async with gateway.database.transaction() as s:
            await s.execute(
                update(RepairPhoto).where(RepairPhoto.id == photo.id).values(attached_at=now())
            )

    worker.register("photo.purge", purge)
    worker.register("photo.attach", attach)


def photo_meta(p: RepairPhoto) -> dict[str, Any]:
    from repairs_gateway_sdk.timeutil import london

    return {
        "id": p.id,
        "content_type": p.content_type,
        "size": p.size,
        "sha256": p.sha256,
        "created_at": london(p.created_at).isoformat(),
        "purge_after": london(p.purge_after).isoformat(),
        "attached_to_works_order": p.attached_at is not None,
    }

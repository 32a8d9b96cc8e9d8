"""GOV.UK Notify's delivery receipts, and the messages of a repair for admins.

Notify posts one receipt per message to the callback URL set in the council's Notify service
(API integration > Callbacks), with the bearer token set there:

    POST /v1/councils/{council}/notifications/receipts
    Authorization: Bearer <notifications.callback_bearer_token>
    {"id": "<notification id>", "reference": "<repair reference>", "to": "...",
     "status": "delivered", "notification_type": "sms", "completed_at": "...", ...}

The answer is 204 (also for a receipt of a message the gateway does not know: Notify would
only retry it). ``to`` is never read, stored or logged. Not in the OpenAPI document: front ends
never call it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.admin import AdminDep
from gateway.api.routes import PROBLEMS, CouncilId
from gateway.notifications import admin_view
from gateway.runtime import Runtime
from repairs_gateway_sdk.errors import NotFound, Unauthorized
from repairs_gateway_sdk.references import normalise_reference

router = APIRouter()


class NotifyReceipt(BaseModel):
    """The fields of Notify's callback the gateway uses; the others (``to`` among them) are
    ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=32)
    reference: str | None = Field(None, max_length=64)
    notification_type: str | None = Field(None, max_length=16)
    completed_at: datetime | None = None


@router.post(
    "/v1/councils/{council}/notifications/receipts",
    status_code=204,
    include_in_schema=False,
)
async def receipt(request: Request, council: CouncilId, body: NotifyReceipt) -> Response:
    rt: Runtime = request.app.state.runtime
    c = rt.gateway.council(council)  # 404 for an unknown council
    if c.config.notifications is None:
        raise NotFound(f"council {council!r} sends no notifications", field="council")
    authorization = request.headers.get("authorization", "")
    presented = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
    if not rt.bookings.notifications.receipts_token_ok(c.id, presented):
        raise Unauthorized("send the callback bearer token set for this council's Notify service")
    await rt.bookings.notifications.receive(
        c.id,
        body.id,
        body.status,
        reference=body.reference,
        notification_type=body.notification_type,
        completed_at=body.completed_at,
    )
    return Response(status_code=204)


@router.get(
    "/v1/councils/{council}/admin/repairs/{reference}/notifications",
    tags=["admin"],
    responses=PROBLEMS,
    operation_id="listRepairNotifications",
    summary="Messages sent about a repair, their delivery, and those still queued or dead",
)
async def repair_notifications(
    a: AdminDep, reference: Annotated[str, Path(max_length=32)]
) -> dict[str, Any]:
    rt, council = a.runtime, a.council
    r = await rt.bookings.get_repair(council, reference)
    ref = normalise_reference(r.reference)
    service = rt.bookings.notifications
    return {
        "reference": ref,
        "messages": [admin_view(rec) for rec in await service.records(council.id, ref)],
        "queued": [
            {
                "outbox_item": i.id,
                "event": i.payload.get("event"),
                "state": i.state,
                "due_at": i.next_attempt_at.isoformat(),
                "attempts": i.attempts,
                "last_error": i.last_error,
            }
            for i in await service.pending(council.id, ref)
        ],
    }

"""Request and response bodies of the standard API v1 (snake_case throughout)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from gateway.text import SafeText
from repairs_gateway_sdk.model import Contact, JobSize, Priority, Property, RepairStatus, Trade
from repairs_gateway_sdk.timeutil import london

# Every time leaves the gateway in Europe/London with an explicit offset (+00:00 / +01:00).
LondonTime = Annotated[
    datetime,
    PlainSerializer(lambda d: london(d).isoformat(), return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2026-12-03T08:00:00+00:00"}
    ),
]

_PROPERTY: dict[str, Any] = {
    "id": "00012345",
    "uprn": "100030000001",
    "address_lines": ["Flat 1", "10 High Street", "Lincoln"],
    "postcode": "LN1 1AA",
    "kind": "dwelling",
    "parent_id": "B0001",
    "online_repairs": True,
    "ineligible_reason": None,
}
_SLOT: dict[str, Any] = {
    "start": "2026-12-03T08:00:00+00:00",
    "end": "2026-12-03T12:00:00+00:00",
    "label": "morning",
    "best": True,
    "slot_token": "2.eyJjIjoiZGVtbyIsIm...Q.x7Yb1dZq0VtM3pLk9wRr2A",
}
_REPAIR: dict[str, Any] = {
    "reference": "DMKT-7Q4X",
    "council": "demo",
    "status": "booked",
    "property_id": "00012345",
    "sor_code": "N631111",
    "trade": "plumbing",
    "size": "small",
    "priority": "normal",
    "communal": False,
    "description": "Shower hose split",
    "appointment": {
        "start": "2026-12-03T08:00:00+00:00",
        "end": "2026-12-03T12:00:00+00:00",
        "label": "morning",
    },
    "works_order_reference": None,
    "created_at": "2026-12-02T21:14:05+00:00",
}

PHONE = r"^\+?[0-9][0-9 ()-]{6,19}$"
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$"


class AddressList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"council": "demo", "postcode": "LN1 1AA", "addresses": [_PROPERTY]}]
        }
    )

    council: str
    postcode: str
    addresses: list[Property]


class Slot(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SLOT]})

    start: LondonTime
    end: LondonTime
    label: str = Field(description="morning, afternoon, all_day, school_run, ...")
    best: bool = False
    slot_token: str = Field(description="opaque; send it back to book this slot")


class SlotPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "council": "demo",
                    "property_id": "00012345",
                    "slots": [_SLOT],
                    "next_cursor": "2.eyJjIjoiZGVtbyIs...Zg.pQ3sVb0cJ1",
                }
            ]
        }
    )

    council: str
    property_id: str
    slots: list[Slot]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page")


# The repair a resident reports, as the booking flow takes it (gateway/booking), from the API
# (RepairIn: this model with the API's own validation, the same object from the route to the
# flow) or from the HRO facade (gateway/hro, which checks its own fields). No docstrings here:
# a model's docstring would become its subclasses' description in the OpenAPI document.
class NewRepair(BaseModel):
    property_id: str
    sor_code: str | None
    trade: Trade | None
    size: JobSize | None
    priority: Priority | None
    description: str
    contact: Contact
    communal: bool
    slot_token: str | None

    def fingerprint(self) -> str:
        """What an Idempotency-Key is bound to: the request's fields, whichever model."""
        body = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class ContactIn(Contact):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Ann Resident", "phone": "07700 900123", "email": None}]
        },
    )

    name: SafeText | None = Field(None, max_length=200)
    phone: str | None = Field(None, pattern=PHONE)
    email: SafeText | None = Field(None, pattern=EMAIL, max_length=320)
    language: Literal["en", "cy"] | None = Field(
        None,
        description="the language for messages to the resident: cy for Welsh (where the "
        "council has Welsh templates); the council's default when absent",
    )


class RepairIn(NewRepair):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "property_id": "00012345",
                    "sor_code": "N631111",
                    "description": "Shower hose split",
                    "contact": {"name": "Ann Resident", "phone": "07700 900123"},
                    "slot_token": _SLOT["slot_token"],
                }
            ]
        },
    )

    property_id: SafeText = Field(min_length=1, max_length=64)
    sor_code: SafeText | None = Field(None, min_length=1, max_length=32)
    trade: Trade | None = None
    size: JobSize | None = None
    priority: Priority | None = Field(
        None, description="used when the council's mapping does not set one"
    )
    description: SafeText = Field(
        min_length=3,
        max_length=2000,
        description="what is wrong, as the resident wrote it; line breaks are kept, control "
        "characters are refused",
    )
    contact: ContactIn
    communal: bool = False
    slot_token: SafeText | None = Field(None, min_length=1, max_length=4096)


class RescheduleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"slot_token": _SLOT["slot_token"]}]}
    )

    slot_token: SafeText = Field(min_length=1, max_length=4096)


class CancelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "fixed it myself"}]}
    )

    reason: SafeText = Field("cancelled by resident", max_length=200)


class Appointment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_REPAIR["appointment"]]})

    start: LondonTime
    end: LondonTime
    label: str | None


class NotificationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "booked",
                    "channel": "sms",
                    "status": "delivered",
                    "sent_at": "2026-12-02T21:14:07+00:00",
                    "status_at": "2026-12-02T21:14:12+00:00",
                }
            ]
        }
    )

    event: Literal["booked", "rescheduled", "cancelled", "awaiting_appointment", "reminder"]
    channel: Literal["sms", "email"]
    status: Literal["sent", "delivered", "failed"] = Field(
        description="sent: GOV.UK Notify accepted it; delivered or failed: its delivery receipt"
    )
    sent_at: LondonTime | None
    status_at: LondonTime


class RepairOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_REPAIR]})

    reference: str = Field(description="short, safe to read over the phone")
    council: str
    status: RepairStatus
    property_id: str
    sor_code: str | None
    trade: Trade
    size: JobSize
    priority: Priority
    communal: bool
    description: str
    appointment: Appointment | None
    works_order_reference: str | None
    created_at: LondonTime
    notifications: list[NotificationOut] | None = Field(
        None,
        description="messages sent to the resident about this repair and what GOV.UK Notify "
        "said of their delivery (in GET answers; absent when the council sends none)",
    )

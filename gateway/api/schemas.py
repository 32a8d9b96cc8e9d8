"""Request and response bodies of the standard API v1 (snake_case throughout)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from gateway.domain import JobSize, Priority, Property, Trade
from gateway.text import SafeText
from gateway.timeutil import london

# Every time leaves the gateway in Europe/London with an explicit offset (+00:00 / +01:00).
LondonTime = Annotated[datetime, PlainSerializer(lambda d: london(d).isoformat(), return_type=str)]

PHONE = r"^\+?[0-9][0-9 ()-]{6,19}$"
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$"


class AddressList(BaseModel):
    council: str
    postcode: str
    addresses: list[Property]


class Slot(BaseModel):
    start: LondonTime
    end: LondonTime
    label: str = Field(description="morning, afternoon, all_day, school_run, ...")
    best: bool = False
    slot_token: str = Field(description="opaque; send it back to book this slot")


class SlotPage(BaseModel):
    council: str
    property_id: str
    slots: list[Slot]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page")


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeText | None = Field(None, max_length=200)
    phone: str | None = Field(None, pattern=PHONE)
    email: SafeText | None = Field(None, pattern=EMAIL, max_length=320)


class RepairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    model_config = ConfigDict(extra="forbid")

    slot_token: SafeText = Field(min_length=1, max_length=4096)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: SafeText = Field("cancelled by resident", max_length=200)


class Appointment(BaseModel):
    start: LondonTime
    end: LondonTime
    label: str | None


class RepairOut(BaseModel):
    reference: str = Field(description="short, safe to read over the phone")
    council: str
    status: str
    property_id: str
    sor_code: str | None
    trade: str
    size: str
    priority: str
    communal: bool
    description: str
    appointment: Appointment | None
    works_order_reference: str | None
    created_at: LondonTime

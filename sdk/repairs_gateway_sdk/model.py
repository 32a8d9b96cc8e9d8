"""The common domain model. Adaptors speak only this vocabulary.

Identifiers from legacy systems are strings (zero padding matters); every time is an
aware datetime (the API renders Europe/London with its offset).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Trade(StrEnum):
    CARPENTRY = "carpentry"
    PLASTERING = "plastering"
    ELECTRICAL = "electrical"
    PLUMBING = "plumbing"
    GROUNDWORKS = "groundworks"
    FENCING = "fencing"
    ROOFING = "roofing"
    GLAZING = "glazing"
    DRAINAGE = "drainage"
    DECORATING = "decorating"
    GAS = "gas"
    BRICKLAYING = "bricklaying"
    MULTI_TRADE = "multi_trade"


# Short trade codes used in councils' schedules and DRS configurations.
TRADE_CODES: dict[str, Trade] = {
    "CA": Trade.CARPENTRY,
    "JO": Trade.CARPENTRY,
    "PS": Trade.PLASTERING,
    "EL": Trade.ELECTRICAL,
    "PL": Trade.PLUMBING,
    "GT": Trade.GROUNDWORKS,
    "FE": Trade.FENCING,
    "RO": Trade.ROOFING,
    "GL": Trade.GLAZING,
    "DR": Trade.DRAINAGE,
    "PD": Trade.DECORATING,
    "GS": Trade.GAS,
    "BR": Trade.BRICKLAYING,
    "MU": Trade.MULTI_TRADE,
}


def parse_trade(value: str) -> Trade:
    """Accept a trade name (``plumbing``) or a schedule code (``PL``), any case."""
    text = value.strip()
    code = TRADE_CODES.get(text.upper())
    if code is not None:
        return code
    return Trade(text.lower().replace("-", "_").replace(" ", "_"))


class JobSize(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    EXTRA_LARGE = "extra_large"


DEFAULT_SIZE_MINUTES: dict[JobSize, int] = {
    JobSize.SMALL: 60,
    JobSize.MEDIUM: 120,
    JobSize.LARGE: 240,
    JobSize.EXTRA_LARGE: 480,
}


class Priority(StrEnum):
    IMMEDIATE = "immediate"
    EMERGENCY = "emergency"
    URGENT = "urgent"
    NORMAL = "normal"


PRIORITY_CODES: dict[str, Priority] = {
    "I": Priority.IMMEDIATE,
    "E": Priority.EMERGENCY,
    "U": Priority.URGENT,
    "N": Priority.NORMAL,
}

# Target days from report to completion (the common council convention).
PRIORITY_TARGET_DAYS: dict[Priority, int] = {
    Priority.IMMEDIATE: 0,
    Priority.EMERGENCY: 1,
    Priority.URGENT: 5,
    Priority.NORMAL: 21,
}


def parse_priority(value: str) -> Priority:
    text = value.strip()
    code = PRIORITY_CODES.get(text.upper())
    if code is not None:
        return code
    return Priority(text.lower())


class PropertyKind(StrEnum):
    DWELLING = "dwelling"
    COMMUNAL_BLOCK = "communal_block"
    COMMUNAL_AREA = "communal_area"
    ESTATE = "estate"


class Property(BaseModel):
    """A place a repair can be reported against."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "00012345",
                    "uprn": "100030000001",
                    "address_lines": ["Flat 1", "10 High Street", "Lincoln"],
                    "postcode": "LN1 1AA",
                    "kind": "dwelling",
                    "parent_id": "B0001",
                    "online_repairs": True,
                    "ineligible_reason": None,
                }
            ]
        },
    )

    id: str = Field(description="the property's id in the council's systems (a string)")
    uprn: str | None = None
    address_lines: list[str]
    postcode: str
    kind: PropertyKind = PropertyKind.DWELLING
    parent_id: str | None = Field(default=None, description="the block or estate this is part of")
    online_repairs: bool = Field(
        default=True, description="whether repairs can be reported online here"
    )
    ineligible_reason: str | None = None


class JobSpec(BaseModel):
    """What a scheduler needs to know about the work: resolved from an SoR code or given."""

    model_config = ConfigDict(frozen=True)

    sor_code: str | None = None
    trade: Trade
    size: JobSize
    duration_minutes: int
    priority: Priority = Priority.NORMAL

    def compact(self) -> list[Any]:
        """A short JSON form for slot tokens and cursors."""
        return [
            self.sor_code,
            self.trade.value,
            self.size.value,
            self.duration_minutes,
            self.priority.value,
        ]

    @classmethod
    def from_compact(cls, data: list[Any]) -> JobSpec:
        sor, trade, size, minutes, priority = data
        return cls(
            sor_code=sor,
            trade=Trade(trade),
            size=JobSize(size),
            duration_minutes=int(minutes),
            priority=Priority(priority),
        )


class VendorSlot(BaseModel):
    """A slot as an adaptor offers it; ``vendor`` carries what it needs to book it back."""

    start: datetime
    end: datetime
    label: str
    best: bool = False
    vendor: dict[str, Any] = Field(default_factory=dict)


class AvailabilityQuery(BaseModel):
    property: Property
    job: JobSpec
    start_from: date
    page_size: int = 10
    resume: dict[str, Any] | None = None


class SlotPage(BaseModel):
    slots: list[VendorSlot]
    resume: dict[str, Any] | None = None  # None: no further pages


class Contact(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    language: str | None = None  # "cy": messages in Welsh where the council has Welsh templates


class BookingOrder(BaseModel):
    """A booking handed to a scheduler. ``reference`` is the gateway's and is unique:
    schedulers key the vendor order by it so a retried booking never creates a second one."""

    reference: str
    property: Property
    job: JobSpec
    slot: VendorSlot
    description: str
    contact: Contact
    communal: bool = False
    operative_notes: list[str] = Field(default_factory=list)


class BookingConfirmation(BaseModel):
    start: datetime
    end: datetime
    label: str
    vendor_order_ref: str | None = None
    vendor_booking_ref: str | None = None


class BookingHandle(BaseModel):
    """What the gateway remembers of a booking so the owning adaptor can find it again."""

    reference: str
    property_id: str
    job: JobSpec
    vendor_order_ref: str | None = None
    vendor_booking_ref: str | None = None
    slot_start: datetime | None = None
    slot_end: datetime | None = None
    vendor_slot: dict[str, Any] = Field(default_factory=dict)


class RepairStatus(StrEnum):
    """Every status a repair can have. ``BOOKING`` (the scheduler is being called) is shown to
    callers as ``booked``; ``FAILED`` (the booking did not happen) is never shown: such a repair
    is not found. ``PUBLIC_STATUSES`` are the ones the API answers with."""

    AWAITING_APPOINTMENT = "awaiting_appointment"
    BOOKING = "booking"
    BOOKED = "booked"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


PUBLIC_STATUSES = (
    RepairStatus.AWAITING_APPOINTMENT,
    RepairStatus.BOOKED,
    RepairStatus.IN_PROGRESS,
    RepairStatus.COMPLETED,
    RepairStatus.CANCELLED,
)


class SchedulerStatus(BaseModel):
    status: RepairStatus
    start: datetime | None = None
    end: datetime | None = None


class WorksOrder(BaseModel):
    reference: str
    property_id: str
    job: JobSpec
    description: str
    contact: Contact
    slot_start: datetime | None = None
    slot_end: datetime | None = None

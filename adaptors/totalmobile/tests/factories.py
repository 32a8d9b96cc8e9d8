"""Builders for the common model used across the Totalmobile tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingHandle,
    BookingOrder,
    Contact,
    JobSize,
    JobSpec,
    Priority,
    Property,
    Trade,
    VendorSlot,
)
from repairs_gateway_sdk.timeutil import today_london

PROPERTY = Property(
    id="00012345",
    uprn="100023336956",
    address_lines=["Flat 1", "2 High Street", "Lincoln"],
    postcode="LN1 1AA",
)


def job(trade: Trade = Trade.PLUMBING, size: JobSize = JobSize.SMALL, minutes: int = 60) -> JobSpec:
    return JobSpec(
        sor_code="N373049",
        trade=trade,
        size=size,
        duration_minutes=minutes,
        priority=Priority.NORMAL,
    )


def query(
    start: date | None = None, page_size: int = 10, resume: dict[str, Any] | None = None
) -> AvailabilityQuery:
    start = start or today_london() + timedelta(days=1)
    return AvailabilityQuery(
        property=PROPERTY, job=job(), start_from=start, page_size=page_size, resume=resume
    )


def order(reference: str, slot: VendorSlot, spec: JobSpec | None = None) -> BookingOrder:
    return BookingOrder(
        reference=reference,
        property=PROPERTY,
        job=spec or job(),
        slot=slot,
        description="Kitchen tap leaking",
        contact=Contact(name="Ann Example", phone="07700900123"),
        operative_notes=["PAIRS"],
    )


def handle(reference: str) -> BookingHandle:
    return BookingHandle(reference=reference, property_id=PROPERTY.id, job=job())


def next_weekday(after: date | None = None) -> date:
    d = (after or today_london()) + timedelta(days=2)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d

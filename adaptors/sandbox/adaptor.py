"""The sandbox adaptor: fixed, deterministic data for front-end teams, no backend at all.

Every answer comes from ``data.py`` and a calendar computed from the date: the adaptor opens
no connection, reads no file and keeps no state, so a sandbox council can be served anywhere
(every replica gives the same answers) and never reaches a council's systems. Magic postcodes
and property ids give each case a screen must handle (README.md has the table).
"""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta
from typing import Literal

from pydantic import Field

from adaptors.sandbox.data import BY_ID, BY_POSTCODE, MORNINGS_GO, NO_SLOTS
from repairs_gateway_sdk.adaptor import (
    AdaptorConfig,
    AdaptorContext,
    AddressSource,
    Scheduler,
    WorksOrderSink,
)
from repairs_gateway_sdk.errors import BackendUnavailable, SlotUnavailable
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    Property,
    RepairStatus,
    SchedulerStatus,
    SlotPage,
    VendorSlot,
    WorksOrder,
)
from repairs_gateway_sdk.timeutil import at_london, today_london

Operation = Literal["addresses", "availability", "book"]
# (start, end, label): the day's slots, in the order they are offered
SLOTS = (
    (time(8), time(12), "morning"),
    (time(12), time(16), "afternoon"),
    (time(8), time(16), "all_day"),
)


class SandboxConfig(AdaptorConfig):
    outage: list[Operation] = Field(
        default_factory=list,
        description="operations that answer 'backend unavailable' (503), as in an outage",
    )
    horizon_days: int = Field(28, ge=1, le=90, description="last bookable day, from today")
    latency_ms: int = Field(0, ge=0, le=5000, description="added to every call (slow screens)")


class SandboxAdaptor(AddressSource, Scheduler, WorksOrderSink):
    type_name = "sandbox"
    Config = SandboxConfig

    def __init__(self, config: SandboxConfig, context: AdaptorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.options = config

    async def _call(self, operation: Operation | None = None) -> None:
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        if operation is not None and operation in self.options.outage:
            raise BackendUnavailable(
                f"the sandbox's {operation} are down (a simulated outage)", retry_after=30
            )

    # -- addresses --------------------------------------------------------------------------
    async def addresses(self, postcode: str) -> list[Property]:
        await self._call("addresses")
        return list(BY_POSTCODE.get(postcode, []))

    async def get_property(self, property_id: str) -> Property | None:
        await self._call()
        return BY_ID.get(property_id)

    # -- appointments -----------------------------------------------------------------------
    async def availability(self, query: AvailabilityQuery) -> SlotPage:
        await self._call("availability")
        if query.property.id in NO_SLOTS:
            return SlotPage(slots=[])
        today = today_london()
        last = today + timedelta(days=self.options.horizon_days)
        resume = query.resume or {}
        day = date.fromisoformat(resume["day"]) if "day" in resume else query.start_from
        day = max(day, today + timedelta(days=1))
        index = int(resume.get("i", 0))
        minutes = query.job.duration_minutes
        slots: list[VendorSlot] = []
        while day <= last:
            if day.weekday() < 5:
                templates = SLOTS[index:]
                for offset, (start, end, label) in enumerate(templates):
                    if (end.hour - start.hour) * 60 < minutes:
                        continue
                    if len(slots) == query.page_size:
                        return SlotPage(
                            slots=slots, resume={"day": day.isoformat(), "i": index + offset}
                        )
                    goes = query.property.id in MORNINGS_GO and label == "morning"
                    slots.append(
                        VendorSlot(
                            start=at_london(day, start),
                            end=at_london(day, end),
                            label=label,
                            best=not slots and not query.resume,
                            vendor={"goes": True} if goes else {},
                        )
                    )
            day, index = day + timedelta(days=1), 0
        return SlotPage(slots=slots)

    async def book(self, order: BookingOrder) -> BookingConfirmation:
        await self._call("book")
        if order.slot.vendor.get("goes") or (
            order.property.id in MORNINGS_GO and order.slot.label == "morning"
        ):
            raise SlotUnavailable("that appointment was just taken; choose another")
        return self._confirm(order.reference, order.slot)

    async def reschedule(self, handle: BookingHandle, slot: VendorSlot) -> BookingConfirmation:
        await self._call("book")
        if slot.vendor.get("goes"):
            raise SlotUnavailable("that appointment was just taken; choose another")
        return self._confirm(handle.reference, slot)

    async def cancel(self, handle: BookingHandle, reason: str) -> None:
        await self._call()

    async def status(self, handle: BookingHandle) -> SchedulerStatus:
        """Bookings are not stored: what the gateway booked is what the sandbox holds."""
        await self._call()
        if handle.slot_start is None or handle.slot_end is None:
            return SchedulerStatus(status=RepairStatus.CANCELLED)  # never confirmed
        return SchedulerStatus(
            status=RepairStatus.BOOKED, start=handle.slot_start, end=handle.slot_end
        )

    @staticmethod
    def _confirm(reference: str, slot: VendorSlot) -> BookingConfirmation:
        return BookingConfirmation(
            start=slot.start,
            end=slot.end,
            label=slot.label,
            vendor_order_ref=f"SBX-{reference}",
            vendor_booking_ref=f"SBX-{reference}",
        )

    # -- works orders -----------------------------------------------------------------------
    async def raise_works_order(self, order: WorksOrder) -> str:
        await self._call()
        return f"SBX-WO-{order.reference}"

    async def cancel_works_order(self, vendor_ref: str) -> None:
        await self._call()

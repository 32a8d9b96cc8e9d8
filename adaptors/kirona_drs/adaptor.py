"""Kirona DRS (Dynamic Resource Scheduler) over SOAP: a Scheduler.

- Availability: ``checkAvailability`` with a query-only order (no order is created to browse),
  7-day windows fetched concurrently, only ``YES`` slots, cached briefly (see availability.py).
- Booking: ``createOrder`` keyed by the gateway reference (``primaryOrderNumber``) then
  ``scheduleBooking``. A lost reply is followed by ``selectOrder`` before anything is sent
  again, so a retried booking never creates a second order; an order whose slot cannot be
  scheduled is deleted before the error is raised (and ``cancel`` finds it by reference if
  even that fails).
- Vague refusals: installations answer a failed ``scheduleBooking`` with ``status=error`` and a
  generic text ("Error in Booking.schedule. Error in modifyJob Planning failed") whether the
  slot was taken or DRS failed. Such an answer is judged by re-reading that slot's
  availability (fresh, not from the cache): no longer offered -> ``SlotUnavailable`` (409, the
  caller asks for fresh slots); still offered, or the re-read fails -> ``BackendUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import structlog

from adaptors.kirona_drs.availability import SlotCache, Walk, WindowKey, slots_from_reply, walk_page
from adaptors.kirona_drs.client import DRSClient
from adaptors.kirona_drs.config import KironaDRSConfig
from adaptors.kirona_drs.wire import SYSTEM, DRSFailure, as_london, failure_to_gateway, listify
from repairs_gateway_sdk.adaptor import HEALTH_PROBE_REFERENCE, AdaptorContext, Scheduler
from repairs_gateway_sdk.errors import (
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    InvalidInput,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    PRIORITY_TARGET_DAYS,
    TRADE_CODES,
    AvailabilityQuery,
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    JobSpec,
    Priority,
    Property,
    RepairStatus,
    SchedulerStatus,
    SlotPage,
    Trade,
    VendorSlot,
)
from repairs_gateway_sdk.slots import label_for
from repairs_gateway_sdk.timeutil import at_london, london, now, today_london

log = structlog.get_logger("adaptors.kirona_drs")

LOST = (httpx.TimeoutException, httpx.TransportError)
COMMENTS_MAX = 255
TRADE_CODE: dict[Trade, str] = {}
for _code, _trade in TRADE_CODES.items():
    TRADE_CODE.setdefault(_trade, _code)

IN_PROGRESS = {"ARRIVED", "STARTED"}
COMPLETED = {"COMPLETED"}


def order_comments(description: str, alert_codes: list[str], sor_code: str) -> str:
    """1-255 characters: alert codes first (never cut off), then the job description."""
    parts = []
    codes = [c.strip() for c in alert_codes if c and c.strip()]
    if codes:
        parts.append("ALERTS: " + ",".join(codes))
    text = " ".join(description.split())
    if text:
        parts.append(text)
    comments = " | ".join(parts) or f"Repair {sor_code}"
    if len(comments) > COMMENTS_MAX:
        comments = comments[: COMMENTS_MAX - 3].rstrip() + "..."
    return comments


class KironaDRSAdaptor(Scheduler):
    type_name = "kirona_drs"
    Config = KironaDRSConfig

    def __init__(self, config: KironaDRSConfig, context: AdaptorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.options = config
        # Clocks are attributes so tests can pin "today" (DST, day change) deterministically.
        self.today: Callable[[], date] = today_london
        self.now: Callable[[], datetime] = now
        self.client = DRSClient(config, context.config_dir, today=lambda: self.today())
        self.cache = SlotCache(config.cache_seconds)

    # -- lifecycle ----------------------------------------------------------------------
    async def prepare(self) -> None:
        """What this adaptor shares with others, ready before its first call: its WSDL,
        parsed once per process and location (no client, connection or session of its own;
        the gateway's background warm-up calls it, see gateway/lifecycle.py)."""
        await self.client.document()

    async def close(self) -> None:
        await self.client.close()

    async def check_health(self) -> None:
        """A cheap read with the session (an order that does not exist): DRS itself answers,
        not a cached session. A refused session is re-opened once, as for any call."""
        await self.find_order(HEALTH_PROBE_REFERENCE)

    # -- mapping ------------------------------------------------------------------------
    def location_id(self, prop: Property) -> str:
        if self.options.location_id_from == "uprn":
            if not prop.uprn:
                raise InvalidInput(
                    "this property has no UPRN, which the scheduler needs", field="property_id"
                )
            return prop.uprn
        return prop.id

    def booking_code(self, job: JobSpec) -> str:
        if job.sor_code:
            return job.sor_code
        code = self.options.default_sor_codes.get(job.trade)
        if not code:
            raise InvalidInput(
                f"no booking code is configured for {job.trade.value} jobs; give an SoR code",
                field="sor_code",
            )
        return code

    def priority(self, priority: Priority) -> str:
        return self.options.priority_map[priority]

    def booking_codes(self, job: JobSpec, reference: str) -> list[dict[str, Any]]:
        code: dict[str, Any] = {
            "bookingCodeSORCode": self.booking_code(job),
            "itemNumberWithinBooking": "1",
            "primaryOrderNumber": reference,
            "quantity": "1",
            "standardMinuteValue": str(job.duration_minutes),
        }
        trade = TRADE_CODE.get(job.trade)
        if trade:
            code["trade"] = trade
        return [code]

    @staticmethod
    def slot_times(slot: VendorSlot) -> tuple[datetime, datetime]:
        try:
            start = datetime.fromisoformat(str(slot.vendor["s"]))
            end = datetime.fromisoformat(str(slot.vendor["e"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(
                "slot does not belong to this scheduler", field="slot_token"
            ) from None
        if start.tzinfo is None or end <= start:
            raise InvalidInput("slot does not belong to this scheduler", field="slot_token")
        return start, end

    # -- availability -------------------------------------------------------------------
    async def availability(self, query: AvailabilityQuery) -> SlotPage:
        location = self.location_id(query.property)
        code = self.booking_code(query.job)
        if query.resume:
            try:
                walk = Walk.from_resume(query.resume)
            except (KeyError, TypeError, ValueError, IndexError):
                raise InvalidInput(
                    "cursor is not valid for this scheduler", field="cursor"
                ) from None
        else:
            first = max(
                query.start_from, self.today() + timedelta(days=self.options.lead_time_days)
            )
            walk = Walk(
                first_window=first, horizon=first + timedelta(days=self.options.search_days)
            )
        job = query.job

        async def window(start: date, end: date) -> list[VendorSlot]:
            key = WindowKey(
                location, code, job.duration_minutes, self.priority(job.priority), start, end
            )
            return await self.cache.get(key, lambda k: self._check(k, job))

        slots, resume = await walk_page(
            walk,
            page_size=query.page_size,
            window_days=self.options.window_days,
            concurrency=self.options.concurrent_windows,
            not_before=self.now(),
            window=window,
        )
        return SlotPage(slots=slots, resume=resume)

    async def _check(self, key: WindowKey, job: JobSpec) -> list[VendorSlot]:
        query_ref = self.options.query_order_number
        body = {
            "canSelectOtherOrders": False,
            "periodBegin": at_london(key.start, time(0, 0)).isoformat(),
            "periodEnd": at_london(key.end, time(0, 0)).isoformat(),
            "theOrder": {
                "contract": self.options.contract,
                "locationID": key.location,
                "primaryOrderNumber": query_ref,
                "priority": self.priority(job.priority),
                "userId": self.options.user_id,
                "theBookingCodes": self.booking_codes(job, query_ref),
            },
        }
        data = await self.client.read("checkAvailability", body)
        if data.get("errorMsg"):
            log.info("drs.availability_note", window=key.start.isoformat())
        return slots_from_reply(data)

    def _invalidate(self, location: str, *days: date) -> None:
        for day in days:
            self.cache.invalidate(location, day)

    # -- orders -------------------------------------------------------------------------
    async def find_order(self, reference: str) -> dict[str, Any] | None:
        data = await self.client.read(
            "selectOrder",
            {
                "primaryOrderNumber": [reference],
                "includeCompletedBookings": True,
            },
        )
        for order in listify(data.get("theOrders")):
            if isinstance(order, dict) and str(order.get("primaryOrderNumber")) == reference:
                return order
        return None

    def _order_body(self, order: BookingOrder, location: str, start: datetime) -> dict[str, Any]:
        job = order.job
        target = self.today() + timedelta(days=PRIORITY_TARGET_DAYS[job.priority])
        target = max(target, start.date())
        lines = [line for line in order.property.address_lines if line]
        body: dict[str, Any] = {
            "orderId": 0,
            "contract": self.options.contract,
            "locationID": location,
            "primaryOrderNumber": order.reference,
            "priority": self.priority(job.priority),
            "targetDate": at_london(target, time(23, 59)).isoformat(),
            "userId": self.options.user_id,
            "orderComments": order_comments(
                order.description, order.operative_notes, self.booking_code(job)
            ),
            "theBookingCodes": self.booking_codes(job, order.reference),
            "theLocation": {
                "locationId": location,
                "name": lines[0] if lines else location,
                "address1": lines[0] if lines else location,
                "address2": lines[1] if len(lines) > 1 else None,
                "address3": lines[2] if len(lines) > 2 else None,
                "postCode": order.property.postcode,
                "contract": self.options.contract,
                "workflowType": self.options.workflow_type,
            },
        }
        if self.options.send_contact_phone and order.contact.phone:
            body["phone"] = order.contact.phone
        return body

    async def _create_order(self, order: BookingOrder, body: dict[str, Any]) -> dict[str, Any]:
        """The order under ``order.reference``: created now, or found if it already exists."""
        for attempt in (1, 2):
            try:
                data = await self.client.call("createOrder", {"theOrder": body})
            except DRSFailure as exc:
                if "exist" in exc.message.lower() or "duplicate" in exc.message.lower():
                    found = await self.find_order(order.reference)
                    if found is not None:
                        log.info("drs.order_found_existing")
                        return found
                raise failure_to_gateway(exc, "createOrder") from None
            except LOST as exc:
                log.warning("drs.create_reply_lost", attempt=attempt, error=type(exc).__name__)
                found = await self.find_order(order.reference)
                if found is not None:
                    return found
                if attempt == 2:
                    raise BackendUnavailable(
                        f"{SYSTEM} did not answer in time", retry_after=30
                    ) from None
                continue
            created = data.get("theOrder")
            if isinstance(created, dict) and created.get("orderId") and _booking_of(created):
                return created
            found = await self.find_order(order.reference)
            if found is None:
                raise BackendRejected(f"{SYSTEM} did not return the order it created")
            return found
        raise AssertionError("unreachable")  # pragma: no cover

    async def _schedule(
        self,
        reference: str,
        drs_order: dict[str, Any],
        location: str,
        job: JobSpec,
        start: datetime,
        end: datetime,
    ) -> None:
        booking = _booking_of(drs_order) or {}
        body = {
            "force": False,
            "timeLock": True,
            "userId": self.options.user_id,
            "theBooking": {
                "bookingId": int(booking.get("bookingId") or 0),
                "orderId": int(drs_order.get("orderId") or 0),
                "contract": self.options.contract,
                "locationID": location,
                "primaryOrderNumber": reference,
                "planningWindowStart": start.isoformat(),
                "planningWindowEnd": end.isoformat(),
                "duration": job.duration_minutes,
                "isEmergency": job.priority in (Priority.IMMEDIATE, Priority.EMERGENCY),
                "isNextBooking": False,
                "userId": self.options.user_id,
                "theBookingCodes": self.booking_codes(job, reference),
            },
        }
        for attempt in (1, 2):
            try:
                await self.client.call("scheduleBooking", body)
                return
            except DRSFailure as exc:
                if exc.status == "failure":
                    raise SlotUnavailable(
                        "that appointment has just been taken; choose another"
                    ) from None
                err = failure_to_gateway(exc, "scheduleBooking")
                if isinstance(err, BackendUnavailable):  # status=error: it does not say why
                    err = await self._judge_refusal(location, job, start, end)
                raise err from None
            except LOST as exc:
                log.warning("drs.schedule_reply_lost", attempt=attempt, error=type(exc).__name__)
                found = await self.find_order(reference)
                if found is not None and _scheduled_at(found, start, end):
                    return
                if attempt == 2:
                    raise BackendUnavailable(
                        f"{SYSTEM} did not answer in time", retry_after=30
                    ) from None

    async def _judge_refusal(
        self, location: str, job: JobSpec, start: datetime, end: datetime
    ) -> GatewayError:
        """What a vague ``scheduleBooking`` error means, from the slot's availability now."""
        day = london(start).date()
        key = WindowKey(
            location,
            self.booking_code(job),
            job.duration_minutes,
            self.priority(job.priority),
            day,
            day + timedelta(days=1),
        )
        try:
            slots = await self._check(key, job)  # fresh: the cache may still offer it
        except GatewayError as exc:
            log.info("drs.refusal_unjudged", error=exc.slug)
            slots = None
        if slots is not None and not any(s.start == start and s.end == end for s in slots):
            log.info("drs.refusal_judged", outcome="slot_taken")
            return SlotUnavailable("that appointment has just been taken; choose another")
        log.info("drs.refusal_judged", outcome="unavailable" if slots is not None else "unknown")
        return BackendUnavailable(f"{SYSTEM} could not schedule the booking", retry_after=30)

    async def _delete(self, drs_order: dict[str, Any], reference: str, location: str) -> None:
        body = {
            "theOrder": {
                "orderId": int(drs_order.get("orderId") or 0),
                "primaryOrderNumber": reference,
                "contract": self.options.contract,
                "locationID": location,
                "userId": self.options.user_id,
            }
        }
        try:
            await self.client.call("deleteOrder", body)
        except DRSFailure as exc:
            text = exc.message.lower()
            if "not found" in text or "does not exist" in text or "no order" in text:
                return
            raise failure_to_gateway(exc, "deleteOrder") from None
        except LOST:
            if await self.find_order(reference) is not None:
                raise BackendUnavailable(
                    f"{SYSTEM} did not confirm the cancellation", retry_after=30
                ) from None

    # -- bookings -----------------------------------------------------------------------
    async def book(self, order: BookingOrder) -> BookingConfirmation:
        start, end = self.slot_times(order.slot)
        if start <= self.now():
            raise SlotUnavailable("that appointment has already started; choose another")
        location = self.location_id(order.property)
        body = self._order_body(order, location, start)
        drs_order = await self._create_order(order, body)
        if not _scheduled_at(drs_order, start, end):
            try:
                await self._schedule(order.reference, drs_order, location, order.job, start, end)
            except GatewayError as exc:
                log.info("drs.schedule_failed", error=exc.slug)
                try:
                    await self._delete(drs_order, order.reference, location)
                except GatewayError as cleanup:
                    log.warning("drs.orphan_left_for_compensation", error=cleanup.slug)
                finally:
                    self._invalidate(location, london(start).date())
                raise
        self._invalidate(location, london(start).date())
        log.info("drs.booked", order_id=drs_order.get("orderId"))
        return _confirmation(drs_order, start, end)

    async def reschedule(self, handle: BookingHandle, slot: VendorSlot) -> BookingConfirmation:
        start, end = self.slot_times(slot)
        if start <= self.now():
            raise SlotUnavailable("that appointment has already started; choose another")
        drs_order = await self.find_order(handle.reference)
        if drs_order is None:
            raise BackendRejected(f"{SYSTEM} has no order {handle.reference}")
        location = str(drs_order.get("locationID") or handle.property_id)
        if not _scheduled_at(drs_order, start, end):
            await self._schedule(handle.reference, drs_order, location, handle.job, start, end)
        days = [london(start).date()]
        if handle.slot_start is not None:
            days.append(london(handle.slot_start).date())
        self._invalidate(location, *days)
        return _confirmation(drs_order, start, end)

    async def cancel(self, handle: BookingHandle, reason: str) -> None:
        drs_order = await self.find_order(handle.reference)
        if drs_order is None:
            return
        location = str(drs_order.get("locationID") or handle.property_id)
        await self._delete(drs_order, handle.reference, location)
        booking = _booking_of(drs_order) or {}
        day = as_london(booking.get("planningWindowStart")) or (
            as_london(handle.slot_start) if handle.slot_start else None
        )
        self.cache.invalidate(location, day.date() if day else None)
        log.info("drs.cancelled", order_id=drs_order.get("orderId"))

    async def status(self, handle: BookingHandle) -> SchedulerStatus:
        drs_order = await self.find_order(handle.reference)
        if drs_order is None:
            return SchedulerStatus(status=RepairStatus.CANCELLED)
        booking = _booking_of(drs_order)
        order_state = str(drs_order.get("status") or "").upper()
        if booking is None:
            state = (
                RepairStatus.COMPLETED
                if order_state in COMPLETED
                else (RepairStatus.AWAITING_APPOINTMENT)
            )
            return SchedulerStatus(status=state)
        life = str(booking.get("bookingLifeCycleStatus") or "").upper()
        start = as_london(booking.get("assignedStart") or booking.get("planningWindowStart"))
        end = as_london(booking.get("assignedEnd") or booking.get("planningWindowEnd"))
        if life in COMPLETED or order_state in COMPLETED:
            state = RepairStatus.COMPLETED
        elif life in IN_PROGRESS or order_state == "STARTED":
            state = RepairStatus.IN_PROGRESS
        elif booking.get("planningWindowStart"):
            state = RepairStatus.BOOKED
        else:
            state = RepairStatus.AWAITING_APPOINTMENT
        if state == RepairStatus.BOOKED:
            start = as_london(booking.get("planningWindowStart"))
            end = as_london(booking.get("planningWindowEnd"))
        return SchedulerStatus(status=state, start=start, end=end)


def _confirmation(drs_order: dict[str, Any], start: datetime, end: datetime) -> BookingConfirmation:
    """The confirmation of ``drs_order`` booked (or moved) to ``start``-``end``."""
    booking = _booking_of(drs_order) or {}
    return BookingConfirmation(
        start=london(start),
        end=london(end),
        label=label_for(start, end),
        vendor_order_ref=_str(drs_order.get("orderId")),
        vendor_booking_ref=_str(booking.get("bookingId")),
    )


def _booking_of(drs_order: dict[str, Any]) -> dict[str, Any] | None:
    for booking in listify(drs_order.get("theBookings")):
        if isinstance(booking, dict):
            return booking
    return None


def _scheduled_at(drs_order: dict[str, Any], start: datetime, end: datetime) -> bool:
    booking = _booking_of(drs_order)
    if booking is None:
        return False
    s = as_london(booking.get("planningWindowStart"))
    e = as_london(booking.get("planningWindowEnd"))
    return s == start and e == end


def _str(value: Any) -> str | None:
    return None if value in (None, "", 0) else str(value)

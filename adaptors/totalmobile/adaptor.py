"""Totalmobile scheduler: Optimise jobs + SERVICE CONNECT planning-window bookings over REST.

Flow (see README.md and openapi.yaml):
- availability: ``GET .../Availability/Browse`` by work type, skills, duration and postcode
  (no job needed) -> planning windows x days -> common slots with Europe/London offsets.
- book: create the job keyed by the gateway reference, then ``POST .../Booking`` for the chosen
  planning window. A lost reply is resolved by looking the job up by reference before any
  retry, so a job is never created twice. If the window has gone, the job is deleted again.
- reschedule: book another window for the same job (the vendor moves the visit).
- cancel: delete the job with a deletion reason. status: read the job.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from adaptors.totalmobile.client import SERVICE_CONNECT, TotalmobileClient
from adaptors.totalmobile.config import TotalmobileConfig, WorkType
from adaptors.totalmobile.errors import SYSTEM, OutcomeUnknown, error_detail, rejection
from adaptors.totalmobile.mapping import (
    Candidate,
    candidates,
    job_body,
    job_status,
    job_visit,
    visit_times,
    visit_window,
    window_of,
)
from repairs_gateway_sdk.adaptor import HEALTH_PROBE_REFERENCE, AdaptorContext, Scheduler
from repairs_gateway_sdk.errors import (
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    InvalidInput,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    RepairStatus,
    SchedulerStatus,
    SlotPage,
    Trade,
    VendorSlot,
)
from repairs_gateway_sdk.slots import label_for
from repairs_gateway_sdk.timeutil import at_london, now, today_london

log = structlog.get_logger("adaptors.totalmobile")

# Error codes with which a booking says the planning window is no longer available.
SLOT_GONE = {
    "planningwindowunavailable",
    "planningwindowfull",
    "noavailability",
    "slotunavailable",
    "capacityexceeded",
}


class TotalmobileAdaptor(Scheduler):
    type_name = "totalmobile"
    Config = TotalmobileConfig

    def __init__(self, config: TotalmobileConfig, context: AdaptorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.options = config
        self.client = TotalmobileClient(config)

    # -- lifecycle -----------------------------------------------------------------------------
    async def close(self) -> None:
        await self.client.aclose()

    async def check_health(self) -> None:
        """A token (cached or fetched) and a cheap read with it (a job that does not exist,
        404): Totalmobile itself answers, not a cached token."""
        await self.client.tokens.token()
        await self._get_job(HEALTH_PROBE_REFERENCE)

    def _work(self, trade: Trade) -> WorkType:
        work = self.options.work_type_map.get(trade)
        if work is None:
            raise InvalidInput(
                f"{trade.value} work is not scheduled through {SYSTEM} here", field="sor_code"
            )
        return work

    # -- availability ------------------------------------------------------------------------
    async def availability(self, query: AvailabilityQuery) -> SlotPage:
        work = self._work(query.job.trade)
        today = today_london()
        first = max(query.start_from, today)
        last = today + timedelta(days=self.options.horizon_days)
        after: str | None = None
        if query.resume:
            try:
                first = max(first, date.fromisoformat(str(query.resume["from"])))
                after = str(query.resume["after"])
            except (KeyError, ValueError):
                raise InvalidInput("cursor is not valid for this search", field="cursor") from None
        current = now()
        wanted = query.page_size + 1  # one more than a page tells whether another page exists
        found: list[Candidate] = []
        chunk = first
        step = timedelta(weeks=self.options.weeks_per_call)
        while chunk <= last and len(found) < wanted:
            body = await self._browse(work, query, chunk)
            lo = chunk.isoformat()
            hi = min(chunk + step - timedelta(days=1), last).isoformat()
            for c in candidates(body, query.job.duration_minutes):
                if c.day < lo or c.day > hi:
                    continue  # outside what this call asked for (vendors pad replies)
                if after is not None and c.key <= after:
                    continue
                try:
                    day = date.fromisoformat(c.day)
                except ValueError:
                    continue
                if day <= today and at_london(day, c.window.start) <= current:
                    continue  # already started
                found.append(c)
                if len(found) == wanted:
                    break
            chunk += step
        page = [c.slot() for c in found[: query.page_size]]
        resume = None
        if len(found) > query.page_size:
            last_c = found[query.page_size - 1]
            resume = {"from": last_c.day, "after": last_c.key}
        log.info("totalmobile.availability", slots=len(page), more=resume is not None)
        return SlotPage(slots=page, resume=resume)

    async def _browse(
        self, work: WorkType, query: AvailabilityQuery, start: date
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "WorkType": work.work_type,
            "Duration": query.job.duration_minutes,
            "PostCode": query.property.postcode,
            "StartDate": start.isoformat(),
            "Weeks": self.options.weeks_per_call,
        }
        if work.skills:
            params["Skills"] = ",".join(work.skills)
        resp = await self.client.read(
            f"{self.client.sc_path}/Availability/Browse",
            op="browse",
            params=params,
            accept=SERVICE_CONNECT,
        )
        if resp.status_code != 200:
            raise rejection(resp, "list appointments")
        body = _json(resp)
        if not isinstance(body, dict):
            raise BackendUnavailable(f"{SYSTEM} sent an unreadable availability reply")
        return body

    # -- jobs -----------------------------------------------------------------------------------
    def _job_path(self, reference: str) -> str:
        return f"{self.client.jobs_path}/{quote(reference, safe='')}"

    async def _get_job(self, reference: str) -> dict[str, Any] | None:
        resp = await self.client.read(self._job_path(reference), op="get_job")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise rejection(resp, "find the job")
        body = _json(resp)
        if not isinstance(body, dict):
            raise BackendUnavailable(f"{SYSTEM} sent an unreadable job")
        return body

    async def _create_job(self, order: BookingOrder, work: WorkType) -> dict[str, Any]:
        """The job for ``order.reference``: created, or found if an earlier attempt made it."""
        body = job_body(order, work)
        for attempt in (1, 2):
            try:
                resp = await self.client.write(
                    "POST", self.client.jobs_path, op="create_job", json=body
                )
            except OutcomeUnknown:
                # The job may exist now: look before trying again, never create it twice.
                job = await self._get_job(order.reference)
                if job is not None:
                    log.info("totalmobile.job.recovered", reference=order.reference)
                    return job
                if attempt == 2:
                    raise
                continue
            if resp.status_code in (200, 201):
                log.info("totalmobile.job.created", reference=order.reference)
                job = _json(resp)
                return job if isinstance(job, dict) else {}
            if resp.status_code == 409:
                job = await self._get_job(order.reference)
                if job is not None:
                    log.info("totalmobile.job.exists", reference=order.reference)
                    return job
            raise rejection(resp, "create the job")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _delete_job(self, reference: str, reason_code: str) -> None:
        body = {"deletionReason": {"reference": reason_code}}
        for attempt in (1, 2):
            try:
                resp = await self.client.write(
                    "DELETE", self._job_path(reference), op="delete_job", json=body
                )
            except OutcomeUnknown:
                if await self._get_job(reference) is None:
                    return  # the delete went through; only its reply was lost
                if attempt == 2:
                    raise
                continue
            if resp.status_code in (200, 202, 204, 404):
                log.info("totalmobile.job.deleted", reference=reference, reason=reason_code)
                return
            raise rejection(resp, "delete the job")

    # -- planning-window bookings -----------------------------------------------------------------
    async def _book_window(self, reference: str, day: str, window: Any) -> dict[str, Any]:
        body = {"PrimaryOrderNumber": reference, "Date": day, "PlanningWindowId": window}
        for attempt in (1, 2):
            try:
                resp = await self.client.write(
                    "POST",
                    f"{self.client.sc_path}/Booking",
                    op="book_window",
                    json=body,
                    accept=SERVICE_CONNECT,
                )
            except OutcomeUnknown:
                job = await self._get_job(reference)
                visit = job_visit(job) if job else None
                if visit is not None and visit_window(visit) == (day, str(window)):
                    log.info("totalmobile.booking.recovered", reference=reference)
                    return visit
                if attempt == 2 or job is None:
                    raise
                continue
            if resp.status_code in (200, 201):
                visit = _json(resp)
                return visit if isinstance(visit, dict) else {}
            code, _ = error_detail(resp)
            if resp.status_code == 409 or (code or "").lower() in SLOT_GONE:
                raise SlotUnavailable("that appointment has just been taken; choose another")
            raise rejection(resp, "book the appointment")
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _confirmation(
        reference: str, visit: dict[str, Any], slot: VendorSlot
    ) -> BookingConfirmation:
        times = visit_times(visit) or (slot.start, slot.end)
        start, end = times
        ext = visit.get("VisitExternalId") or visit.get("visitExternalId")
        return BookingConfirmation(
            start=start,
            end=end,
            label=label_for(start, end),
            vendor_order_ref=reference,
            vendor_booking_ref=str(ext) if ext is not None else None,
        )

    # -- Scheduler ------------------------------------------------------------------------------
    async def book(self, order: BookingOrder) -> BookingConfirmation:
        work = self._work(order.job.trade)
        day, window = window_of(order.slot)
        job = await self._create_job(order, work)
        visit = job_visit(job)
        if visit is not None and visit_window(visit) == (day, str(window)):
            return self._confirmation(order.reference, visit, order.slot)  # booked before
        try:
            booked = await self._book_window(order.reference, day, window)
        except SlotUnavailable:
            if visit is None:
                await self._withdraw(order.reference)
            raise
        log.info("totalmobile.booked", reference=order.reference, window=str(window))
        return self._confirmation(order.reference, booked, order.slot)

    async def _withdraw(self, reference: str) -> None:
        """Delete a job whose window has gone, so no unbooked job is left behind."""
        try:
            await self._delete_job(reference, self.options.slot_unavailable_deletion_reason)
        except GatewayError as exc:
            log.warning("totalmobile.job.withdraw_failed", reference=reference, error=exc.slug)
            # The gateway compensates (cancels by reference) after an unavailable backend.
            raise BackendUnavailable(
                "that appointment has just been taken and the job could not be withdrawn yet",
                retry_after=30,
            ) from None

    async def reschedule(self, handle: BookingHandle, slot: VendorSlot) -> BookingConfirmation:
        day, window = window_of(slot)
        try:
            booked = await self._book_window(handle.reference, day, window)
        except BackendRejected:
            if await self._get_job(handle.reference) is None:
                raise InvalidInput(
                    "this repair has no appointment to move", field="reference"
                ) from None
            raise
        log.info("totalmobile.rescheduled", reference=handle.reference, window=str(window))
        return self._confirmation(handle.reference, booked, slot)

    async def cancel(self, handle: BookingHandle, reason: str) -> None:
        code = self.options.deletion_reasons.get(
            reason.strip().lower(), self.options.default_deletion_reason
        )
        await self._delete_job(handle.reference, code)

    async def status(self, handle: BookingHandle) -> SchedulerStatus:
        job = await self._get_job(handle.reference)
        if job is None:
            return SchedulerStatus(status=RepairStatus.CANCELLED)
        visit = job_visit(job)
        times = visit_times(visit) if visit else None
        st = job_status(job)
        if times is None:
            return SchedulerStatus(status=st)
        return SchedulerStatus(status=st, start=times[0], end=times[1])


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise BackendUnavailable(f"{SYSTEM} sent a reply that is not JSON") from None

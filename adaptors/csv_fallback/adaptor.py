"""CSV fallback: properties from a CSV file, appointments from a configured calendar,
bookings held in the gateway's own database with capacity enforced atomically."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from adaptors.csv_fallback.calendar import shared_calendar
from adaptors.csv_fallback.calendar import slot_key as slot_key  # the diary's slot names
from adaptors.csv_fallback.config import CsvFallbackConfig
from adaptors.csv_fallback.properties import (
    ImportProgress,
    PropertyFileError,
    PropertyIndex,
    build_index,
    index_file,
    index_is_current,
    open_index,
    shared_index,
)
from adaptors.csv_fallback.tables import (
    METADATA,
    NAMESPACE,
    CsvBooking,
    CsvSlotUsage,
    insert_ignoring_conflict,
    rowcount,
)
from repairs_gateway_sdk.adaptor import AdaptorContext, AddressSource, Scheduler
from repairs_gateway_sdk.errors import BackendUnavailable, InvalidInput, SlotUnavailable
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
)
from repairs_gateway_sdk.store import Store
from repairs_gateway_sdk.timeutil import london, now, today_london

USAGE_CACHE_SECONDS = 2.0
PAGES_KEPT = 1024  # pages of the diary kept (cleared when full; keys are signed cursors')


def parse_slot_key(key: str) -> tuple[datetime, datetime]:
    s, e = key.split("/")
    return datetime.fromisoformat(s), datetime.fromisoformat(e)


class CsvFallbackAdaptor(AddressSource, Scheduler):
    type_name = "csv_fallback"
    store_namespace = NAMESPACE  # its tables: csv_slot_usage, csv_bookings
    Config = CsvFallbackConfig

    def __init__(self, config: CsvFallbackConfig, context: AdaptorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.options = config
        self.calendar = shared_calendar(config.calendar)  # read only: what config decides
        self.csv_path = context.resolve(config.properties_file)
        self._index: PropertyIndex | None = None
        self._lock = asyncio.Lock()
        self._usage_cache: dict[tuple[str, Any, Any], tuple[float, dict[str, int]]] = {}
        # pages worked out from a cached usage, kept as long as it is (see availability)
        self._pages: dict[tuple[Any, ...], tuple[float, SlotPage]] = {}

    @cached_property
    def index_path(self) -> Path:
        """The property file's index: one per file, shared by every council that reads it."""
        index_dir = (
            self.context.resolve(self.options.index_dir)
            if self.options.index_dir
            else (self.context.data_dir / "csv_fallback")
        )
        return index_file(index_dir, self.csv_path)

    # -- lifecycle -----------------------------------------------------------------------
    async def prepare(self) -> None:
        """The shared part of ``start``: the property file's index, imported if it is not
        current and opened once per process (with the event loop's connection to it), so a
        council's first call finds it open. A missing or broken file is left for ``start``
        to report (no backend is involved: the gateway's warm-up need not count it)."""
        try:
            index = await self._open_shared()
        except (FileNotFoundError, PropertyFileError):
            return
        index.warm()

    async def start(self) -> None:
        if self.context.store is not None:
            await self.context.store.ensure(METADATA)  # its own tables, created if missing
        await self._ensure_index()

    async def _open_shared(self) -> PropertyIndex:
        """The open index when its files are unchanged (two ``stat`` calls); else checked,
        imported if need be and opened, in a worker thread."""
        csv_path, index_path = self.csv_path, self.index_path
        found = open_index(csv_path, index_path)
        if found is not None:
            return found
        return await asyncio.to_thread(shared_index, csv_path, index_path)

    async def _ensure_index(self) -> PropertyIndex:
        if self._index is not None:
            return self._index
        async with self._lock:
            if self._index is None:
                missing = False  # said outside the handler: no OSError in its context
                try:
                    self._index = await self._open_shared()
                except FileNotFoundError:
                    missing = True
                except PropertyFileError as exc:  # kept as the context: the file's own words
                    raise BackendUnavailable(f"property file is invalid: {exc}") from None
                if missing:
                    raise BackendUnavailable(f"property file for adaptor {self.name!r} not found")
        assert self._index is not None
        return self._index

    def import_properties(
        self, progress: ImportProgress | None = None, *, force: bool = False
    ) -> int | None:
        """Build the property index now, before serving (``repairs-gateway properties
        import``), so the first start does not have to; the number of properties, or None
        when the index was already current. Raises ``PropertyFileError``."""
        if not force and index_is_current(self.csv_path, self.index_path):
            return None
        return build_index(self.csv_path, self.index_path, progress)

    async def check_health(self) -> None:
        """The property file is still there (and its index loaded)."""
        await self._ensure_index()
        if not self.csv_path.is_file():
            raise BackendUnavailable(f"property file for adaptor {self.name!r} not found")

    @property
    def db(self) -> Store:
        if self.context.store is None:
            raise BackendUnavailable("the CSV fallback needs a store for its diary")
        return self.context.store

    # -- addresses ------------------------------------------------------------------------
    async def addresses(self, postcode: str) -> list[Property]:
        index = self._index or await self._ensure_index()
        return index.by_postcode(postcode)

    async def get_property(self, property_id: str) -> Property | None:
        index = self._index or await self._ensure_index()
        return index.by_id(property_id)

    # -- availability -----------------------------------------------------------------------
    async def availability(self, query: AvailabilityQuery) -> SlotPage:
        cal = self.config_calendar
        today = today_london()
        first = max(query.start_from, today + timedelta(days=cal.lead_time_days))
        last = today + timedelta(days=cal.horizon_days)
        after: tuple[datetime, datetime] | None = None
        if query.resume and "after" in query.resume:
            after = parse_slot_key(str(query.resume["after"]))
            first = max(first, london(after[0]).date())
        trade = query.job.trade.value
        capacity = self.calendar.capacity(trade)
        if capacity <= 0 or first > last:
            return SlotPage(slots=[])
        # The diary's page for a job depends on the trade, the job's length and the days,
        # never on the property: every resident asking the same is answered from one page
        # while the usage it was worked out from is kept (a booking here forgets both). It
        # is used only while its first slot is still to come (else, worked out again).
        page_key = (trade, query.job.duration_minutes, first, last, after, query.page_size)
        current = now()
        kept = self._pages.get(page_key)
        if kept is not None and kept[0] > time.monotonic():
            page = kept[1]
            if not page.slots or page.slots[0].start > current:
                return SlotPage.model_construct(slots=list(page.slots), resume=page.resume)
        until, used = await self._usage(trade, first, last)
        slots: list[VendorSlot] = []
        more = False
        for start, end, label, key in self.calendar.keyed_slots(
            first, last, query.job.duration_minutes
        ):
            if start <= current or (after is not None and (start, end) <= after):
                continue
            if used.get(key, 0) >= capacity:
                continue
            if len(slots) == query.page_size:
                more = True
                break
            # built from the calendar's own values (aware datetimes, text): nothing to check
            slots.append(
                VendorSlot.model_construct(start=start, end=end, label=label, vendor={"key": key})
            )
        resume = {"after": slots[-1].vendor["key"]} if more and slots else None
        if len(self._pages) >= PAGES_KEPT:
            self._pages.clear()
        self._pages[page_key] = (until, SlotPage.model_construct(slots=slots, resume=resume))
        return SlotPage.model_construct(slots=list(slots), resume=resume)

    @property
    def config_calendar(self):  # type: ignore[no-untyped-def]
        return self.options.calendar

    async def _usage(self, trade: str, first: Any, last: Any) -> tuple[float, dict[str, int]]:
        """Places taken per slot, and until when (monotonic) they are kept. Cached briefly:
        offering a slot taken in the last moments only costs a clean 409 at booking, where
        capacity is enforced atomically; this process's own bookings forget it at once."""
        key = (trade, first, last)
        hit = self._usage_cache.get(key)
        t = time.monotonic()
        if hit is not None and hit[0] > t:
            return hit
        used = await self._read_usage(trade, first, last)
        kept = self._usage_cache[key] = (t + USAGE_CACHE_SECONDS, used)
        return kept

    def _forget_usage(self) -> None:
        self._usage_cache.clear()
        self._pages.clear()

    async def _read_usage(self, trade: str, first: Any, last: Any) -> dict[str, int]:
        lo = datetime.combine(first, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
        hi = datetime.combine(last, datetime.max.time(), tzinfo=UTC) + timedelta(days=1)
        async with self.db.session() as s:
            rows = await s.execute(
                select(CsvSlotUsage.slot_key, CsvSlotUsage.used).where(
                    CsvSlotUsage.council == self.context.council,
                    CsvSlotUsage.adaptor == self.name,
                    CsvSlotUsage.trade == trade,
                    CsvSlotUsage.slot_key >= lo.isoformat(),
                    CsvSlotUsage.slot_key <= hi.isoformat(),
                )
            )
            return {k: u for k, u in rows.all()}

    # -- bookings -------------------------------------------------------------------------
    def _slot_from_vendor(self, slot: VendorSlot, duration_minutes: int) -> str:
        """The slot's key, once it is known to be one this calendar offers for a job of this
        length (a signed token from an older configuration, or another adaptor's, is not)."""
        key = str(slot.vendor.get("key", ""))
        try:
            start, end = parse_slot_key(key)
        except ValueError:
            raise InvalidInput(
                "slot does not belong to this calendar", field="slot_token"
            ) from None
        if start <= now():
            raise SlotUnavailable("that appointment has already started; choose another")
        day = london(start).date()
        cal, today = self.config_calendar, today_london()
        offered = (
            (start, end) == (slot.start, slot.end)
            and today + timedelta(days=cal.lead_time_days) <= day
            and day <= today + timedelta(days=cal.horizon_days)
            and any(
                (s, e) == (start, end)
                for s, e, _ in self.calendar.slots(day, day, duration_minutes)
            )
        )
        if not offered:
            raise SlotUnavailable("that appointment is not offered any more; choose another")
        return key

    async def _take(self, s: Any, trade: str, key: str) -> None:
        await insert_ignoring_conflict(
            s,
            self.db.dialect,
            CsvSlotUsage.__table__,
            {
                "council": self.context.council,
                "adaptor": self.name,
                "trade": trade,
                "slot_key": key,
                "used": 0,
            },
        )
        result = await s.execute(
            update(CsvSlotUsage)
            .where(
                CsvSlotUsage.council == self.context.council,
                CsvSlotUsage.adaptor == self.name,
                CsvSlotUsage.trade == trade,
                CsvSlotUsage.slot_key == key,
                CsvSlotUsage.used < self.calendar.capacity(trade),
            )
            .values(used=CsvSlotUsage.used + 1)
        )
        if rowcount(result) != 1:
            raise SlotUnavailable("that appointment has just been taken; choose another")

    async def _release(self, s: Any, trade: str, key: str) -> None:
        await s.execute(
            update(CsvSlotUsage)
            .where(
                CsvSlotUsage.council == self.context.council,
                CsvSlotUsage.adaptor == self.name,
                CsvSlotUsage.trade == trade,
                CsvSlotUsage.slot_key == key,
                CsvSlotUsage.used > 0,
            )
            .values(used=CsvSlotUsage.used - 1)
        )

    async def _booking(self, s: Any, reference: str, *, lock: bool = False) -> CsvBooking | None:
        """The booking row; ``lock`` (in write transactions) so that two cancels or moves of
        one booking on PostgreSQL cannot both release its place."""
        q = select(CsvBooking).where(
            CsvBooking.council == self.context.council,
            CsvBooking.adaptor == self.name,
            CsvBooking.reference == reference,
        )
        row: CsvBooking | None = (
            await s.execute(q.with_for_update() if lock else q)
        ).scalar_one_or_none()
        return row

    @staticmethod
    def _confirmation(key: str, reference: str) -> BookingConfirmation:
        start, end = parse_slot_key(key)
        from repairs_gateway_sdk.slots import label_for

        return BookingConfirmation(
            start=start,
            end=end,
            label=label_for(start, end),
            vendor_order_ref=reference,
            vendor_booking_ref=key,
        )

    async def book(self, order: BookingOrder) -> BookingConfirmation:
        key = self._slot_from_vendor(order.slot, order.job.duration_minutes)
        trade = order.job.trade.value
        if self.options.booking_latency_ms:
            await asyncio.sleep(self.options.booking_latency_ms / 1000)
        self._forget_usage()
        async with self.db.transaction() as s:
            existing = await self._booking(s, order.reference, lock=True)
            if existing is not None and existing.status == "booked":
                return self._confirmation(existing.slot_key, order.reference)
            await self._take(s, trade, key)
            if existing is None:
                s.add(
                    CsvBooking(
                        council=self.context.council,
                        adaptor=self.name,
                        reference=order.reference,
                        trade=trade,
                        slot_key=key,
                        status="booked",
                    )
                )
            else:
                existing.slot_key, existing.status = key, "booked"
        self._forget_usage()  # again: a browse may have cached during the transaction
        conf = self._confirmation(key, order.reference)
        return conf.model_copy(update={"label": order.slot.label})

    async def reschedule(self, handle: BookingHandle, slot: VendorSlot) -> BookingConfirmation:
        key = self._slot_from_vendor(slot, handle.job.duration_minutes)
        self._forget_usage()
        async with self.db.transaction() as s:
            existing = await self._booking(s, handle.reference, lock=True)
            if existing is None or existing.status != "booked":
                raise InvalidInput("this repair has no appointment to move", field="reference")
            if existing.slot_key == key:
                return self._confirmation(key, handle.reference)
            await self._take(s, existing.trade, key)
            await self._release(s, existing.trade, existing.slot_key)
            existing.slot_key = key
        self._forget_usage()
        conf = self._confirmation(key, handle.reference)
        return conf.model_copy(update={"label": slot.label})

    async def cancel(self, handle: BookingHandle, reason: str) -> None:
        self._forget_usage()
        async with self.db.transaction() as s:
            existing = await self._booking(s, handle.reference, lock=True)
            if existing is None or existing.status != "booked":
                return
            await self._release(s, existing.trade, existing.slot_key)
            existing.status = "cancelled"
        self._forget_usage()

    async def status(self, handle: BookingHandle) -> SchedulerStatus:
        async with self.db.session() as s:
            existing = await self._booking(s, handle.reference)
        if existing is None:
            return SchedulerStatus(status=RepairStatus.CANCELLED)
        start, end = parse_slot_key(existing.slot_key)
        if existing.status == "cancelled":
            return SchedulerStatus(status=RepairStatus.CANCELLED, start=start, end=end)
        done = end <= now()
        return SchedulerStatus(
            status=RepairStatus.COMPLETED if done else RepairStatus.BOOKED, start=start, end=end
        )

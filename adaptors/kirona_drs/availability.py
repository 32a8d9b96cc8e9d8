"""Availability: 7-day windows, the slot cache and the page walk.

DRS answers ``checkAvailability`` for at most 7 days and takes seconds per call, so a page is
built from consecutive windows fetched concurrently (``concurrent_windows`` per round) from the
lead date until the page is full or the horizon is reached. Each window's answer is cached
briefly per (location, booking code, duration, window); concurrent requests for the same window
share one call; a booking invalidates the windows of its location that hold its day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from adaptors.kirona_drs.wire import as_london, listify, merged, raw_items
from repairs_gateway_sdk.model import VendorSlot
from repairs_gateway_sdk.slots import label_for


@dataclass(frozen=True)
class WindowKey:
    location: str
    code: str
    minutes: int
    priority: str  # DRS may offer different slots to an emergency than to routine work
    start: date
    end: date  # exclusive


Fetch = Callable[[WindowKey], Awaitable[list[VendorSlot]]]


class SlotCache:
    """Window answers for ``ttl`` seconds; one call per window at a time (single flight)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[WindowKey, tuple[float, list[VendorSlot]]] = {}
        self._inflight: dict[WindowKey, asyncio.Future[list[VendorSlot]]] = {}
        self._generation: dict[str, int] = {}
        self.calls = 0

    async def get(self, key: WindowKey, fetch: Fetch) -> list[VendorSlot]:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        generation = self._generation.get(key.location, 0)
        future: asyncio.Future[list[VendorSlot]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            self.calls += 1
            slots = await fetch(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it from their await
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(slots)
        if self.ttl > 0 and self._generation.get(key.location, 0) == generation:
            self._entries[key] = (self.clock() + self.ttl, slots)
        return slots

    def invalidate(self, location: str, day: date | None = None) -> int:
        """Forget the windows of ``location`` holding ``day`` (all of them when None)."""
        self._generation[location] = self._generation.get(location, 0) + 1
        gone = [
            k
            for k in self._entries
            if k.location == location and (day is None or k.start <= day < k.end)
        ]
        for k in gone:
            del self._entries[k]
        return len(gone)

    def clear(self) -> None:
        self._entries.clear()


def slots_from_reply(data: dict[str, Any]) -> list[VendorSlot]:
    """The bookable (``YES``) slots of a checkAvailability reply, in time order."""
    out: list[VendorSlot] = []
    for day in listify(data.get("theSlots")):
        if not isinstance(day, dict):
            continue
        for info in listify(day.get("slotsForDay")) + raw_items(day, "slotsForDay"):
            if not isinstance(info, dict):
                continue
            info = merged(info)
            if str(info.get("available") or "").upper() != "YES":
                continue
            start, end = as_london(info.get("beginDate")), as_london(info.get("endDate"))
            if start is None or end is None or end <= start:
                continue
            out.append(
                VendorSlot(
                    start=start,
                    end=end,
                    label=label_for(start, end),
                    best=info.get("bestSlot") in (True, "true", "1"),
                    vendor={"s": start.isoformat(), "e": end.isoformat()},
                )
            )
    out.sort(key=lambda s: (s.start, s.end))
    return out


@dataclass
class Walk:
    """Where a page search starts and stops (and which slots it has already shown)."""

    first_window: date
    horizon: date  # exclusive
    after: tuple[datetime, datetime] | None = None

    def resume(self, window: date, last: VendorSlot) -> dict[str, Any]:
        return {
            "w": window.isoformat(),
            "until": self.horizon.isoformat(),
            "after": [last.start.isoformat(), last.end.isoformat()],
        }

    @classmethod
    def from_resume(cls, resume: dict[str, Any]) -> Walk:
        after = resume.get("after") or None
        return cls(
            first_window=date.fromisoformat(str(resume["w"])),
            horizon=date.fromisoformat(str(resume["until"])),
            after=(datetime.fromisoformat(after[0]), datetime.fromisoformat(after[1]))
            if after
            else None,
        )


async def walk_page(
    walk: Walk,
    *,
    page_size: int,
    window_days: int,
    concurrency: int,
    not_before: datetime,
    window: Callable[[date, date], Awaitable[list[VendorSlot]]],
) -> tuple[list[VendorSlot], dict[str, Any] | None]:
    """Collect up to ``page_size`` slots window by window; the resume point if more remain."""
    found: list[tuple[date, VendorSlot]] = []
    start = walk.first_window
    step = timedelta(days=window_days)
    while start < walk.horizon and len(found) <= page_size:
        starts: list[date] = []
        s = start
        while s < walk.horizon and len(starts) < concurrency:
            starts.append(s)
            s += step
        results = await asyncio.gather(*(window(ws, min(ws + step, walk.horizon)) for ws in starts))
        for ws, slots in zip(starts, results, strict=True):
            for slot in slots:
                if slot.start <= not_before:
                    continue
                if walk.after is not None and (slot.start, slot.end) <= walk.after:
                    continue
                found.append((ws, slot))
        start = s
    page = found[:page_size]
    if len(found) > page_size or (start < walk.horizon and len(page) == page_size and page):
        ws, last = page[-1]
        return [p[1] for p in page], walk.resume(ws, last)
    return [p[1] for p in page], None

"""The configurable appointment calendar: working days, slot templates, bank holidays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import holidays

from adaptors.csv_fallback.config import WEEKDAYS, CalendarConfig
from repairs_gateway_sdk.slots import label_for
from repairs_gateway_sdk.timeutil import at_london, parse_clock

SUBDIVISIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}
DAYS_KEPT = 4096  # (day, job length) entries of the per-day cache, cleared when full

Slot = tuple[datetime, datetime, str, str]  # start, end, label, slot key


def slot_key(start: datetime, end: datetime) -> str:
    """How the diary names a slot (its bookings and usage rows): both ends in UTC."""
    return f"{start.astimezone(UTC).isoformat()}/{end.astimezone(UTC).isoformat()}"


class Calendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self._days = {WEEKDAYS.index(d) for d in config.working_days}
        self._closed = set(config.closed_dates)
        self._holidays = (
            _bank_holidays(SUBDIVISIONS[config.bank_holidays]) if config.bank_holidays else {}
        )
        ref = date(2026, 1, 5)  # labels depend on wall-clock times only: work them out once
        self._templates = sorted(
            (
                parse_clock(t.start),
                parse_clock(t.end),
                t.label
                or label_for(
                    at_london(ref, parse_clock(t.start)), at_london(ref, parse_clock(t.end))
                ),
            )
            for t in config.slots
        )

        # (day, minutes) -> that day's slots: they depend on the configuration only
        self._day_slots: dict[tuple[date, int], tuple[Slot, ...]] = {}

    def is_open(self, day: date) -> bool:
        return day.weekday() in self._days and day not in self._closed and day not in self._holidays

    def slots(
        self, first_day: date, last_day: date, minutes: int
    ) -> Iterator[tuple[datetime, datetime, str]]:
        """Slots long enough for the job, in (start, end) order, day by day."""
        for start, end, label, _ in self.keyed_slots(first_day, last_day, minutes):
            yield start, end, label

    def keyed_slots(self, first_day: date, last_day: date, minutes: int) -> Iterator[Slot]:
        """As ``slots``, each with its slot key; each day is worked out once and kept (the
        same datetimes and keys are handed out again: they are immutable)."""
        day = first_day
        one = timedelta(days=1)
        cache = self._day_slots
        while day <= last_day:
            todays = cache.get((day, minutes))
            if todays is None:
                todays = self._work_out(day, minutes)
                if len(cache) >= DAYS_KEPT:
                    cache.clear()
                cache[(day, minutes)] = todays
            yield from todays
            day += one

    def _work_out(self, day: date, minutes: int) -> tuple[Slot, ...]:
        if not self.is_open(day):
            return ()
        todays = []
        for start_clock, end_clock, label in self._templates:
            start, end = at_london(day, start_clock), at_london(day, end_clock)
            if (end - start) >= timedelta(minutes=minutes):
                todays.append((start, end, label))
        todays.sort(key=lambda s: (s[0], s[1]))
        return tuple((start, end, label, slot_key(start, end)) for start, end, label in todays)

    def capacity(self, trade: str) -> int:
        for t, cap in self.config.capacity_per_trade.items():
            if t.value == trade:
                return cap
        return self.config.capacity


_CALENDARS: dict[str, Calendar] = {}
CALENDARS_KEPT = 256  # distinct calendar configurations; cleared when full


def shared_calendar(config: CalendarConfig) -> Calendar:
    """One calendar per distinct configuration, shared by every council configured alike:
    it holds only what the configuration decides (its templates and the slots of each day
    worked out); places taken and bookings are each council's own, in its store."""
    key = config.model_dump_json()
    calendar = _CALENDARS.get(key)
    if calendar is None:
        if len(_CALENDARS) >= CALENDARS_KEPT:
            _CALENDARS.clear()
        calendar = _CALENDARS[key] = Calendar(config)
    return calendar


@lru_cache(maxsize=8)
def _bank_holidays(subdiv: str) -> holidays.HolidayBase:
    """One holiday calendar per nation, shared by every council's diary (read only: the
    library fills in years as they are asked for)."""
    return holidays.country_holidays("GB", subdiv=subdiv)

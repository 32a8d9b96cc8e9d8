"""The configurable appointment calendar: working days, slot templates, bank holidays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

from adaptors.csv_fallback.config import WEEKDAYS, CalendarConfig
from repairs_gateway_sdk.slots import label_for
from repairs_gateway_sdk.timeutil import at_london, parse_clock

SUBDIVISIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}


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

    def is_open(self, day: date) -> bool:
        return day.weekday() in self._days and day not in self._closed and day not in self._holidays

    def slots(
        self, first_day: date, last_day: date, minutes: int
    ) -> Iterator[tuple[datetime, datetime, str]]:
        """Slots long enough for the job, in (start, end) order, day by day."""
        day = first_day
        while day <= last_day:
            if self.is_open(day):
                todays = []
                for start_clock, end_clock, label in self._templates:
                    start, end = at_london(day, start_clock), at_london(day, end_clock)
                    if (end - start) >= timedelta(minutes=minutes):
                        todays.append((start, end, label))
                yield from sorted(todays, key=lambda s: (s[0], s[1]))
            day += timedelta(days=1)

    def capacity(self, trade: str) -> int:
        for t, cap in self.config.capacity_per_trade.items():
            if t.value == trade:
                return cap
        return self.config.capacity


@lru_cache(maxsize=8)
def _bank_holidays(subdiv: str) -> holidays.HolidayBase:
    """One holiday calendar per nation, shared by every council's diary (read only: the
    library fills in years as they are asked for)."""
    return holidays.country_holidays("GB", subdiv=subdiv)

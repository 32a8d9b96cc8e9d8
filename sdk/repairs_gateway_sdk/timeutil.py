"""Europe/London time handling. Every time leaving the gateway carries its offset."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def now() -> datetime:
    return datetime.now(UTC)


def today_london() -> date:
    return now().astimezone(LONDON).date()


def london(dt: datetime) -> datetime:
    """Render an aware datetime in Europe/London (naive input is taken as London wall time)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=LONDON)
    return dt.astimezone(LONDON)


def at_london(day: date, clock: time) -> datetime:
    """The aware instant of a London wall-clock time on a day (handles both clock changes)."""
    return datetime.combine(day, clock, tzinfo=LONDON)


def parse_clock(text: str) -> time:
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(count)]

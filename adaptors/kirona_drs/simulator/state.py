"""The simulated DRS: operatives' diaries, orders, bookings, sessions, a settable clock.

Everything here is synchronous and runs on the server's single event loop, so each request's
read-check-write happens without interleaving (as a database transaction would in DRS).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from repairs_gateway_sdk.timeutil import LONDON

TEMPLATES: list[tuple[time, time]] = [
    (time(8, 0), time(12, 0)),
    (time(12, 0), time(16, 0)),
    (time(9, 30), time(14, 30)),
    (time(8, 0), time(16, 0)),
]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SPAN = timedelta(days=7)

# NHF schedule-of-rates prefixes -> DRS trade (used when a booking code carries no trade).
SOR_PREFIX_TRADES = {
    "30": "CA",
    "31": "CA",
    "32": "CA",
    "33": "CA",
    "34": "CA",
    "35": "CA",
    "36": "CA",
    "55": "GL",
    "62": "DR",
    "63": "PL",
    "83": "EL",
    "84": "EL",
    "85": "EL",
    "86": "EL",
}
OPERATIVES = {
    "PL": ["Plumber 1", "Plumber 2"],
    "EL": ["Electrician 1", "Electrician 2"],
    "CA": ["Carpenter 1", "Carpenter 2"],
    "GL": ["Glazier 1"],
    "DR": ["Drainage 1"],
    "RO": ["Roofer 1"],
    "PS": ["Plasterer 1"],
    "PD": ["Decorator 1"],
    "GS": ["Gas engineer 1"],
    "MU": ["Multi-trade 1", "Multi-trade 2"],
}


class Refused(Exception):
    """A DRS refusal: answered with ``status`` and ``errorMsg``."""

    def __init__(self, message: str, status: str = "failure") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Booking:
    booking_id: int
    start: datetime | None = None
    end: datetime | None = None
    life: str | None = None  # PLANNED, DESPATCHED, STARTED, COMPLETED ...


@dataclass
class Order:
    order_id: int
    reference: str
    contract: str
    location: str
    priority: str
    comments: str
    trade: str
    minutes: int
    code: str
    target: datetime | None
    user_id: str
    booking: Booking
    area: str = "default"
    status: str = "PLANNED"


@dataclass
class Diary:
    trade: str
    area: str
    operatives: list[str]

    @property
    def capacity(self) -> int:
        return len(self.operatives)


@dataclass
class DRSState:
    login: str = "gateway"
    password: str = "drs-secret"  # noqa: S105 - a simulator's seeded credential
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    capacity: int | None = None  # overrides every diary's size when set
    clock: datetime | None = None
    sessions: dict[str, date] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    usage: dict[tuple[str, str, datetime, datetime], int] = field(default_factory=dict)
    diaries: dict[tuple[str, str], Diary] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    areas: dict[str, str] = field(default_factory=dict)  # location prefix -> area
    _ids: Any = field(default_factory=lambda: itertools.count(1001))

    def __post_init__(self) -> None:
        if not self.diaries:
            for trade, names in OPERATIVES.items():
                self.diaries[(trade, "default")] = Diary(trade, "default", list(names))

    # -- clock --------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock if self.clock is not None else datetime.now(UTC)

    def today(self) -> date:
        return self.now().astimezone(LONDON).date()

    # -- sessions -----------------------------------------------------------------------
    def open_session(self, login: str, password: str) -> str:
        if login != self.login or not secrets.compare_digest(password, self.password):
            raise Refused("Login failed: invalid login or password")
        sid = secrets.token_hex(16)
        self.sessions[sid] = self.today()
        return sid

    def check_session(self, sid: str | None) -> None:
        day = self.sessions.get(sid or "")
        if day is None or day != self.today():
            raise Refused("Invalid session id: the session has expired or is closed", "error")

    def close_session(self, sid: str | None) -> None:
        self.sessions.pop(sid or "", None)

    def expire_sessions(self) -> None:
        self.sessions.clear()

    # -- diaries ------------------------------------------------------------------------
    def area_of(self, location: str) -> str:
        for prefix, area in self.areas.items():
            if location.startswith(prefix):
                return area
        return "default"

    def capacity_of(self, trade: str, area: str) -> int:
        diary = self.diaries.get((trade, area)) or self.diaries.get((trade, "default"))
        if diary is None:
            return 0
        return self.capacity if self.capacity is not None else diary.capacity

    @staticmethod
    def trade_of(code: dict[str, Any]) -> str:
        trade = (code.get("trade") or "").strip().upper()
        if trade:
            return trade
        sor = (code.get("bookingCodeSORCode") or "").strip().upper().lstrip("N")
        return SOR_PREFIX_TRADES.get(sor[:2], "MU")

    def windows_on(self, day: date, minutes: int) -> list[tuple[datetime, datetime]]:
        if WEEKDAYS[day.weekday()] not in self.working_days:
            return []
        out = []
        for s, e in TEMPLATES:
            start = datetime.combine(day, s, tzinfo=LONDON)
            end = datetime.combine(day, e, tzinfo=LONDON)
            if (end - start).total_seconds() / 60 >= minutes:
                out.append((start, end))
        return out

    def free(self, trade: str, area: str, start: datetime, end: datetime) -> bool:
        used = self.usage.get((trade, area, start, end), 0)
        return start > self.now() and used < self.capacity_of(trade, area)

    def availability(
        self, begin: datetime, end: datetime, trade: str, location: str, minutes: int
    ) -> tuple[list[dict[str, Any]], str]:
        note = ""
        if end - begin > MAX_SPAN:
            end = begin + MAX_SPAN
            note = "The requested period exceeds 7 days and has been reduced to 7 days"
        area = self.area_of(location)
        days: list[dict[str, Any]] = []
        best_given = False
        day = begin.astimezone(LONDON).date()
        while datetime.combine(day, time(0, 0), tzinfo=LONDON) < end:
            slots = []
            for s, e in self.windows_on(day, minutes):
                if s < begin:
                    continue
                yes = self.free(trade, area, s, e)
                best = yes and not best_given
                best_given = best_given or best
                slots.append(
                    {
                        "available": "YES" if yes else "NO",
                        "beginDate": s,
                        "bestSlot": best,
                        "endDate": e,
                    }
                )
            off = WEEKDAYS[day.weekday()] not in self.working_days
            days.append(
                {
                    "day": datetime.combine(day, time(0, 0), tzinfo=LONDON),
                    "slotsForDay": slots,
                    "weeklyDayOff": off,
                }
            )
            day += timedelta(days=1)
        return days, note

    # -- orders -------------------------------------------------------------------------
    def create_order(self, o: dict[str, Any]) -> Order:
        ref = (o.get("primaryOrderNumber") or "").strip()
        if not ref:
            raise Refused("primaryOrderNumber is required")
        for key in ("contract", "locationID", "priority", "userId"):
            if not (o.get(key) or "").strip():
                raise Refused(f"{key} is required")
        comments = o.get("orderComments") or ""
        if not 1 <= len(comments) <= 255:
            raise Refused("orderComments must be between 1 and 255 characters")
        codes = o.get("theBookingCodes") or []
        if not codes:
            raise Refused("theBookingCodes: at least one booking code is required")
        if ref in self.orders:
            raise Refused(f"Order {ref} already exists")
        code = codes[0]
        minutes = int(code.get("standardMinuteValue") or 60)
        order_id = next(self._ids)
        target = o.get("targetDate")
        order = Order(
            order_id=order_id,
            reference=ref,
            contract=o["contract"],
            location=o["locationID"],
            priority=o["priority"],
            comments=comments,
            trade=self.trade_of(code),
            minutes=minutes,
            code=code.get("bookingCodeSORCode") or "",
            target=target,
            user_id=o["userId"],
            booking=Booking(booking_id=order_id + 500000),
            area=self.area_of(o["locationID"]),
        )
        self.orders[ref] = order
        return order

    def find(self, order_id: Any, ref: str | None) -> Order | None:
        if ref and ref in self.orders:
            return self.orders[ref]
        for order in self.orders.values():
            if str(order.order_id) == str(order_id):
                return order
        return None

    def _release(self, order: Order) -> None:
        b = order.booking
        if b.start is not None and b.end is not None:
            key = (order.trade, order.area, b.start, b.end)
            self.usage[key] = max(0, self.usage.get(key, 0) - 1)

    def schedule(self, b: dict[str, Any]) -> Order:
        order = self.find(b.get("orderId"), b.get("primaryOrderNumber"))
        if order is None or (
            b.get("bookingId") and int(b["bookingId"]) != order.booking.booking_id
        ):
            raise Refused("Booking not found")
        start, end = b.get("planningWindowStart"), b.get("planningWindowEnd")
        if start is None or end is None:
            raise Refused("planningWindowStart and planningWindowEnd are required")
        start, end = start.astimezone(LONDON), end.astimezone(LONDON)
        if order.booking.start == start and order.booking.end == end:
            return order
        if (start, end) not in self.windows_on(start.date(), order.minutes):
            raise Refused("The requested slot is not available for this booking")
        if not self.free(order.trade, order.area, start, end):
            raise Refused("No capacity available for the requested slot")
        self._release(order)
        key = (order.trade, order.area, start, end)
        self.usage[key] = self.usage.get(key, 0) + 1
        order.booking.start, order.booking.end, order.booking.life = start, end, "PLANNED"
        return order

    def delete_order(self, o: dict[str, Any]) -> Order:
        order = self.find(o.get("orderId"), o.get("primaryOrderNumber"))
        if order is None:
            raise Refused("Order not found")
        self._release(order)
        del self.orders[order.reference]
        return order

    def delete_booking(self, b: dict[str, Any]) -> Order:
        order = self.find(b.get("orderId"), b.get("primaryOrderNumber"))
        if order is None:
            for o in self.orders.values():
                if str(o.booking.booking_id) == str(b.get("bookingId")):
                    order = o
        if order is None:
            raise Refused("Booking not found")
        self._release(order)
        order.booking.start = order.booking.end = order.booking.life = None
        return order

    def summary(self) -> dict[str, Any]:
        return {
            "today": self.today().isoformat(),
            "now": self.now().isoformat(),
            "orders": len(self.orders),
            "scheduled": sum(1 for o in self.orders.values() if o.booking.start is not None),
            "sessions_open": len(self.sessions),
            "calls": dict(self.calls),
            "orders_by_reference": {
                ref: {
                    "order_id": o.order_id,
                    "booking_id": o.booking.booking_id,
                    "trade": o.trade,
                    "minutes": o.minutes,
                    "priority": o.priority,
                    "comments": o.comments,
                    "code": o.code,
                    "start": o.booking.start.isoformat() if o.booking.start else None,
                    "end": o.booking.end.isoformat() if o.booking.end else None,
                    "status": o.booking.life,
                }
                for ref, o in self.orders.items()
            },
        }

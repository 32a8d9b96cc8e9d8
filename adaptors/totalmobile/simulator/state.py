"""In-memory state of the Totalmobile simulator: clients, tokens, jobs, capacity, faults."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock
from typing import Any

import holidays

from repairs_gateway_sdk.model import Trade
from repairs_gateway_sdk.timeutil import at_london, today_london

SCOPES = {"optimise", "serviceconnect"}


@dataclass(frozen=True)
class Window:
    id: int
    name: str
    start: clock
    end: clock

    @property
    def minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)

    def as_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "StartHour": self.start.hour,
            "StartMinute": self.start.minute,
            "EndHour": self.end.hour,
            "EndMinute": self.end.minute,
        }


SEEDED_WINDOWS = [
    Window(1, "AM", clock(8, 0), clock(12, 0)),
    Window(2, "PM", clock(12, 0), clock(16, 0)),
    Window(3, "School run", clock(9, 30), clock(14, 30)),
    Window(4, "All day", clock(8, 0), clock(16, 0)),
]
SEEDED_WORK_TYPES = {t.value.upper() for t in Trade}


@dataclass
class Token:
    value: str
    scopes: set[str]
    expires_at: float


@dataclass
class Rule:
    """One switchable fault: ``action`` on the next ``times`` requests to ``op``."""

    op: str
    action: str  # "error" | "lost_reply" | "delay"
    status: int = 500
    retry_after: int | None = None
    times: int = 1
    delay_ms: int = 0
    body: dict[str, Any] | None = None


@dataclass
class SimState:
    client_id: str = "repairs-gateway"
    client_secret: str = "s3cret"
    worlds: set[str] = field(default_factory=lambda: {"housing-repairs"})
    token_ttl_seconds: int = 3600
    default_capacity: int = 2
    capacity: dict[str, int] = field(default_factory=dict)
    latency_ms: int = 0
    windows: list[Window] = field(default_factory=lambda: list(SEEDED_WINDOWS))
    work_types: set[str] = field(default_factory=lambda: set(SEEDED_WORK_TYPES))
    tokens: dict[str, Token] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: dict[tuple[str, str, int], int] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    deletions: list[dict[str, str]] = field(default_factory=list)
    visit_seq: int = 0
    _holidays: Any = field(default_factory=lambda: holidays.country_holidays("GB", subdiv="ENG"))

    # -- bookkeeping -------------------------------------------------------------------------
    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def reset(
        self,
        *,
        default_capacity: int = 2,
        capacity: dict[str, int] | None = None,
        token_ttl_seconds: int = 3600,
    ) -> None:
        self.default_capacity = default_capacity
        self.capacity = dict(capacity or {})
        self.token_ttl_seconds = token_ttl_seconds
        self.latency_ms = 0
        self.tokens.clear()
        self.jobs.clear()
        self.usage.clear()
        self.rules.clear()
        self.counters.clear()
        self.deletions.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "jobs": len(self.jobs),
            "jobs_created": self.counters.get("jobs_created", 0),
            "jobs_deleted": self.counters.get("jobs_deleted", 0),
            "token_requests": self.counters.get("token_requests", 0),
            "tokens_issued": self.counters.get("tokens_issued", 0),
            "bookings": sum(1 for j in self.jobs.values() if j.get("appointment")),
            "references": sorted(self.jobs),
            "booked_references": sorted(r for r, j in self.jobs.items() if j.get("appointment")),
            "deletions": list(self.deletions),
            "requests": {k[4:]: v for k, v in self.counters.items() if k.startswith("req:")},
            "faults_pending": len(self.rules),
        }

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self, scopes: set[str]) -> Token:
        tok = Token(secrets.token_urlsafe(24), scopes, time.monotonic() + self.token_ttl_seconds)
        self.tokens[tok.value] = tok
        self.count("tokens_issued")
        return tok

    def valid_token(self, value: str) -> Token | None:
        tok = self.tokens.get(value)
        if tok is None or tok.expires_at <= time.monotonic():
            return None
        return tok

    def expire_tokens(self) -> None:
        for tok in self.tokens.values():
            tok.expires_at = 0.0

    # -- faults ------------------------------------------------------------------------------
    def take_rule(self, op: str) -> Rule | None:
        for rule in self.rules:
            if rule.op in (op, "*") and rule.times > 0:
                rule.times -= 1
                if rule.times == 0:
                    self.rules.remove(rule)
                return rule
        return None

    # -- capacity ----------------------------------------------------------------------------
    def window(self, window_id: Any) -> Window | None:
        for w in self.windows:
            if str(w.id) == str(window_id):
                return w
        return None

    def remaining(self, work_type: str, day: date, window: Window, duration: int) -> int:
        if day <= today_london() or day.weekday() >= 5 or day in self._holidays:
            return 0
        if duration > window.minutes:
            return 0
        cap = self.capacity.get(work_type, self.default_capacity)
        return max(0, cap - self.usage.get((work_type, day.isoformat(), window.id), 0))

    def take(self, work_type: str, day: str, window: Window) -> None:
        key = (work_type, day, window.id)
        self.usage[key] = self.usage.get(key, 0) + 1

    def release(self, work_type: str, day: str, window_id: int) -> None:
        key = (work_type, day, window_id)
        if self.usage.get(key, 0) > 0:
            self.usage[key] -= 1

    def visit(self, reference: str, day: date, window: Window) -> dict[str, Any]:
        self.visit_seq += 1
        start: datetime = at_london(day, window.start)
        end: datetime = at_london(day, window.end)
        return {
            "VisitExternalId": f"V{self.visit_seq:07d}",
            "PrimaryOrderNumber": reference,
            "Date": day.isoformat(),
            "PlanningWindowId": window.id,
            "PlanningWindowName": window.name,
            "Start": start.isoformat(),
            "End": end.isoformat(),
        }

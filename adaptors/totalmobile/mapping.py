"""Mapping between Totalmobile's vocabulary and the gateway's common model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from adaptors.totalmobile.config import WorkType
from repairs_gateway_sdk.errors import InvalidInput
from repairs_gateway_sdk.model import (
    PRIORITY_TARGET_DAYS,
    BookingOrder,
    RepairStatus,
    VendorSlot,
)
from repairs_gateway_sdk.slots import label_for
from repairs_gateway_sdk.timeutil import at_london, london, now

# Job statuses as Totalmobile reports them (compared case-insensitively).
STATUS_MAP: dict[str, RepairStatus] = {
    "unscheduled": RepairStatus.AWAITING_APPOINTMENT,
    "unallocated": RepairStatus.AWAITING_APPOINTMENT,
    "pending": RepairStatus.AWAITING_APPOINTMENT,
    "scheduled": RepairStatus.BOOKED,
    "booked": RepairStatus.BOOKED,
    "allocated": RepairStatus.BOOKED,
    "dispatched": RepairStatus.BOOKED,
    "travelling": RepairStatus.IN_PROGRESS,
    "onsite": RepairStatus.IN_PROGRESS,
    "inprogress": RepairStatus.IN_PROGRESS,
    "started": RepairStatus.IN_PROGRESS,
    "completed": RepairStatus.COMPLETED,
    "closed": RepairStatus.COMPLETED,
    "cancelled": RepairStatus.CANCELLED,
    "deleted": RepairStatus.CANCELLED,
}


@dataclass(frozen=True)
class PlanningWindow:
    id: Any
    name: str
    start: time
    end: time


def _get(d: dict[str, Any], *names: str) -> Any:
    """Tolerant field access: Totalmobile payloads mix PascalCase and camelCase."""
    for n in names:
        v = d.get(n)
        if v is not None:
            return v
    lowered = {k.lower(): v for k, v in d.items()}
    for n in names:
        v = lowered.get(n.lower())
        if v is not None:
            return v
    return None


def planning_windows(body: dict[str, Any]) -> dict[str, PlanningWindow]:
    out: dict[str, PlanningWindow] = {}
    for w in _get(body, "PlanningWindows") or []:
        try:
            pw = PlanningWindow(
                id=_get(w, "Id"),
                name=str(_get(w, "Name") or ""),
                start=time(int(_get(w, "StartHour")), int(_get(w, "StartMinute") or 0)),
                end=time(int(_get(w, "EndHour")), int(_get(w, "EndMinute") or 0)),
            )
        except (TypeError, ValueError):
            continue  # a window we cannot read is a window we do not offer
        out[str(pw.id)] = pw
    return out


class Candidate(NamedTuple):
    """An available (day, planning window). ``key`` sorts in time order and is the cursor;
    ``day`` is the ISO date as sent (parsed only for the candidates kept)."""

    key: str
    day: str
    window: PlanningWindow

    def slot(self) -> VendorSlot:
        d = date.fromisoformat(self.day)
        start, end = at_london(d, self.window.start), at_london(d, self.window.end)
        # Built from values made here, so validation is skipped (availability is the hot path).
        return VendorSlot.model_construct(
            start=start,
            end=end,
            label=label_for(start, end),
            best=False,
            vendor={"d": self.day, "w": self.window.id},
        )


def candidate_key(day: date, start: time, end: time) -> str:
    # London wall-clock order is time order for daytime windows; zero padding keeps it sortable.
    return day.isoformat() + _suffix(start, end)


def _suffix(start: time, end: time) -> str:
    return f"T{start.hour:02d}:{start.minute:02d}/{end.hour:02d}:{end.minute:02d}"


def candidates(body: dict[str, Any], duration_minutes: int) -> list[Candidate]:
    """Every available (window, day) in the reply that fits the job, in time order.

    Cheap on purpose (no datetimes, no models): the adaptor builds slots only for what it
    returns, so reading a reply costs little more than decoding it.
    """
    windows = planning_windows(body)
    out: list[Candidate] = []
    for apw in _get(body, "AvailabilityPlanningWindows") or []:
        pw = windows.get(str(_get(apw, "PlanningWindowId")))
        if pw is None:
            continue
        length = (pw.end.hour * 60 + pw.end.minute) - (pw.start.hour * 60 + pw.start.minute)
        if length < duration_minutes:
            continue
        suffix = _suffix(pw.start, pw.end)
        append = out.append
        for day in _get(apw, "AvailabilityDays") or []:
            status = day.get("AvailabilityStatus")
            if status is None:
                status = _get(day, "AvailabilityStatus")
            if not status:  # 0 (or missing) = unavailable
                continue
            raw = day.get("Date")
            if raw is None:
                raw = _get(day, "Date")
            raw = str(raw)[:10]
            if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":
                continue  # checked fully (date.fromisoformat) for the candidates kept
            # the window id breaks ties: two windows with the same hours are two slots
            append(Candidate(f"{raw}{suffix}#{pw.id}", raw, pw))
    out.sort(key=lambda c: c.key)
    return out


def window_of(slot: VendorSlot) -> tuple[str, Any]:
    """(date, planning window id) that a slot books; refuses a slot from elsewhere."""
    d, w = slot.vendor.get("d"), slot.vendor.get("w")
    if not isinstance(d, str) or w is None:
        raise InvalidInput("slot does not come from this Totalmobile world", field="slot_token")
    try:
        date.fromisoformat(d)
    except ValueError:
        raise InvalidInput(
            "slot does not come from this Totalmobile world", field="slot_token"
        ) from None
    return d, w


def job_body(order: BookingOrder, work: WorkType) -> dict[str, Any]:
    """The Optimise job for a booking. Personal data goes to the vendor only, never to logs."""
    prop = order.property
    lines = (list(prop.address_lines) + ["", "", "", ""])[:4]
    address: dict[str, Any] = {f"addressLine{i + 1}": line for i, line in enumerate(lines)}
    address["postCode"] = prop.postcode
    due = max(now() + timedelta(days=PRIORITY_TARGET_DAYS[order.job.priority]), order.slot.end)
    extra = [
        {"name": "gatewayReference", "value": order.reference},
        {"name": "priority", "value": order.job.priority.value},
        {"name": "communal", "value": "true" if order.communal else "false"},
    ]
    if order.job.sor_code:
        extra.append({"name": "sorCode", "value": order.job.sor_code})
    if order.contact.phone:
        extra.append({"name": "contactPhone", "value": order.contact.phone})
    if order.contact.email:
        extra.append({"name": "contactEmail", "value": order.contact.email})
    if order.operative_notes:
        extra.append({"name": "operativeNotes", "value": "; ".join(order.operative_notes)})
    body: dict[str, Any] = {
        "identity": {"reference": order.reference},
        "description": order.description[:2000],
        "duration": order.job.duration_minutes,
        "workType": work.work_type,
        "skills": [{"identity": {"reference": s}} for s in work.skills],
        "dueDate": {"end": london(due).isoformat()},
        "location": {
            "reference": prop.id,
            "addressDetail": address,
        },
        "contact": {"name": order.contact.name or ""},
        "additionalProperties": extra,
    }
    if prop.uprn:
        body["location"]["uprn"] = prop.uprn
    return body


def job_status(job: dict[str, Any]) -> RepairStatus:
    raw = str(_get(job, "status") or "").replace(" ", "").replace("_", "").lower()
    status = STATUS_MAP.get(raw)
    if status is None:
        # Unknown status: a job with a visit is booked, one without awaits an appointment.
        return RepairStatus.BOOKED if job_visit(job) else RepairStatus.AWAITING_APPOINTMENT
    return status


def job_visit(job: dict[str, Any]) -> dict[str, Any] | None:
    visit = _get(job, "appointment", "visit")
    return visit if isinstance(visit, dict) else None


def visit_times(visit: dict[str, Any]) -> tuple[datetime, datetime] | None:
    s, e = _get(visit, "Start", "start"), _get(visit, "End", "end")
    if not s or not e:
        return None
    try:
        return london(datetime.fromisoformat(str(s))), london(datetime.fromisoformat(str(e)))
    except ValueError:
        return None


def visit_window(visit: dict[str, Any]) -> tuple[str, str]:
    return (str(_get(visit, "Date") or "")[:10], str(_get(visit, "PlanningWindowId")))

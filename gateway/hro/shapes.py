"""Translation between the gateway's model and the shapes the HRO front ends read and send.

Times: the front ends show what they are given in the *browser's* time zone and send it back
verbatim, so the facade emits naive Europe/London wall-clock times (``2027-03-29T08:00:00``,
what HRO's .NET backends emit) and reads what comes back as London time (``Z`` and offsets are
accepted and converted).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from repairs_gateway_sdk.errors import InvalidInput
from repairs_gateway_sdk.model import Property
from repairs_gateway_sdk.timeutil import LONDON, london

REPAIR_TYPES = {"tenant": "tenant", "communal": "communal", "leasehold": "leasehold"}
# what N&S's find answers as repairType (and sends back in the change flow's slot path)
REPAIR_TYPE_OUT = {"tenant": "TENANT", "leasehold": "LEASEHOLD", "communal": "COMMUNAL"}
# the values N&S passes for the four early exits, and their defaults
OUTCOME_PARAMS = {
    "emergency": ("emergencyvalue", "emergency"),
    "not_eligible": ("noteligiblenonemergencyvalue", "notEligibleNonEmergency"),
    "unable_to_book": ("unabletobookvalue", "unableToBook"),
    "contact_us": ("contactusvalue", "contactUs"),
}


def wall_clock(dt: datetime) -> str:
    """An instant as a naive Europe/London wall-clock time."""
    return london(dt).replace(tzinfo=None).isoformat(timespec="seconds")


def parse_time(text: str | None, field: str) -> datetime:
    """A time the front end sent back: naive is London wall-clock time; Z/offsets converted."""
    if not text or not text.strip():
        raise InvalidInput("a start and end time are required", field=field)
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date and time", field=field) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=LONDON)
    return dt.astimezone(UTC)


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _clock(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    return f"{hour}:{dt.minute:02d}{'am' if dt.hour < 12 else 'pm'}"


def slot_display(start: datetime, end: datetime) -> str:
    """As the front ends write it: ``3rd December 2026 between 8:00am to 12:00pm``."""
    s, e = london(start), london(end)
    return f"{_ordinal(s.day)} {s:%B %Y} between {_clock(s)} to {_clock(e)}"


def address_out(p: Property) -> dict[str, Any]:
    lines = [line for line in p.address_lines if line and line.strip()]
    return {
        "locationId": p.id,
        "addressLine1": lines[0] if lines else "",
        "addressLine2": ", ".join(lines[1:]),
        "postCode": p.postcode,
    }


def address_display(p: Property) -> str:
    return ", ".join([*(line for line in p.address_lines if line and line.strip()), p.postcode])


def same_postcode(a: str | None, b: str | None) -> bool:
    """Postcodes compared ignoring case and spaces."""
    if not a or not b:
        return False
    return re.sub(r"\s+", "", a).upper() == re.sub(r"\s+", "", b).upper()


def triage_out(options: Any, outcome_values: dict[str, str]) -> list[dict[str, Any]]:
    """N&S's tree: ``[{value, display, options?}]``, early exits as the values it passed."""
    result = []
    for o in options:
        d: dict[str, Any] = {"value": o.value, "display": o.display}
        if o.options:
            d["options"] = triage_out(o.options, outcome_values)
        elif o.outcome:
            d["value"] = outcome_values[o.outcome]
        result.append(d)
    return result

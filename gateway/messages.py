"""What residents read: dates and times in GOV.UK style, in English or Welsh, and the values
(personalisation) a GOV.UK Notify template receives.

GOV.UK style (https://www.gov.uk/guidance/style-guide/a-to-z-of-gov-uk-style#times): "8am",
"9:30am", "5:30pm", "midday" and "midnight" (never "12pm"/"12am"), ranges with "to", dates
as "Thursday 3 December" (the year only when it is not this year's). Welsh follows the same
pattern ("Dydd Iau 3 Rhagfyr, 8am i hanner dydd"); have the council's translator check the
templates around these values.

Messages are built from the event's own snapshot (what was booked when the event happened),
never from the repair's current state: a "booked" message delivered after a cancellation
still names the appointment that was booked.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from repairs_gateway_sdk.timeutil import london, today_london

Language = Literal["en", "cy"]

_WELSH_DAYS = (
    "Dydd Llun",
    "Dydd Mawrth",
    "Dydd Mercher",
    "Dydd Iau",
    "Dydd Gwener",
    "Dydd Sadwrn",
    "Dydd Sul",
)
_WELSH_MONTHS = (
    "Ionawr",
    "Chwefror",
    "Mawrth",
    "Ebrill",
    "Mai",
    "Mehefin",
    "Gorffennaf",
    "Awst",
    "Medi",
    "Hydref",
    "Tachwedd",
    "Rhagfyr",
)
_WORDS: dict[Language, dict[str, str]] = {
    "en": {"midday": "midday", "midnight": "midnight", "to": "to"},
    "cy": {"midday": "hanner dydd", "midnight": "hanner nos", "to": "i"},
}
STATUS_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "booked": "booked",
        "rescheduled": "moved",
        "cancelled": "cancelled",
        "awaiting_appointment": "waiting for an appointment",
        "in_progress": "in progress",
        "completed": "completed",
    },
    "cy": {
        "booked": "wedi'i drefnu",
        "rescheduled": "wedi'i symud",
        "cancelled": "wedi'i ganslo",
        "awaiting_appointment": "yn aros am apwyntiad",
        "in_progress": "ar y gweill",
        "completed": "wedi'i gwblhau",
    },
}


def clock(dt: datetime, language: Language = "en") -> str:
    """A London time as GOV.UK writes it: 8am, 9:30am, midday, 12:30pm, 5pm, midnight."""
    t = london(dt)
    if t.minute == 0 and t.hour in (0, 12):
        return _WORDS[language]["midnight" if t.hour == 0 else "midday"]
    hour = t.hour % 12 or 12
    suffix = "am" if t.hour < 12 else "pm"
    return f"{hour}{suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d}{suffix}"


def day(dt: datetime, language: Language = "en", today: date | None = None) -> str:
    """ "Thursday 3 December" (with the year when it is not this year's)."""
    t = london(dt)
    this_year = (today or today_london()).year
    if language == "cy":
        text = f"{_WELSH_DAYS[t.weekday()]} {t.day} {_WELSH_MONTHS[t.month - 1]}"
    else:
        text = f"{t:%A} {t.day} {t:%B}"
    return text if t.year == this_year else f"{text} {t.year}"


def time_range(start: datetime, end: datetime, language: Language = "en") -> str:
    """ "8am to midday"; "hanner dydd i 4pm"."""
    return f"{clock(start, language)} {_WORDS[language]['to']} {clock(end, language)}"


def appointment_text(
    start: datetime, end: datetime, language: Language = "en", today: date | None = None
) -> str:
    """ "Thursday 3 December, 8am to midday"."""
    return f"{day(start, language, today)}, {time_range(start, end, language)}"


def snapshot(status: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """What a message needs to know of the repair at the time of its event (JSON-safe)."""
    return {
        "status": status,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }


def snapshot_times(snap: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    start, end = snap.get("start"), snap.get("end")
    return (
        datetime.fromisoformat(start) if start else None,
        datetime.fromisoformat(end) if end else None,
    )


def personalisation(
    reference: str,
    event: str,
    snap: dict[str, Any],
    language: Language = "en",
    today: date | None = None,
) -> dict[str, str]:
    """The values every template receives: ``reference``; ``date`` ("Thursday 3 December");
    ``time`` ("8am to midday"); ``appointment`` ("Thursday 3 December, 8am to midday");
    ``status`` (in words: "booked", "moved", "cancelled", ...). Empty strings when the event
    has no appointment (awaiting one)."""
    status = str(snap.get("status") or "")
    words = STATUS_WORDS[language]
    status_word = words.get(event) if event in ("rescheduled", "cancelled") else None
    values = {
        "reference": reference,
        "status": status_word or words.get(status, status.replace("_", " ")),
        "date": "",
        "time": "",
        "appointment": "",
    }
    start, end = snapshot_times(snap)
    if start and end:
        values["date"] = day(start, language, today)
        values["time"] = time_range(start, end, language)
        values["appointment"] = appointment_text(start, end, language, today)
    return values

"""Slot labels shared by every scheduler adaptor, so residents see the same words everywhere."""

from __future__ import annotations

from datetime import datetime, time

from repairs_gateway_sdk.timeutil import london


def label_for(start: datetime, end: datetime) -> str:
    s, e = london(start).time(), london(end).time()
    hours = (end - start).total_seconds() / 3600
    if hours >= 7:
        return "all_day"
    if s == time(9, 30) and e == time(14, 30):
        return "school_run"
    if e <= time(12, 0) or (s < time(12, 0) and e <= time(13, 0)):
        return "morning"
    if s >= time(12, 0) and e <= time(18, 0):
        return "afternoon"
    if s >= time(17, 0):
        return "evening"
    return f"{s:%H:%M}-{e:%H:%M}"

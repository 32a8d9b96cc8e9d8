"""Planning windows x days -> common slots: labels, Europe/London offsets, paging (respx)."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from repairs_gateway_sdk.timeutil import today_london

from .conftest import make_adaptor
from .factories import query

BASE = "https://tm.example"
BROWSE = f"{BASE}/api/serviceconnect/worlds/housing-repairs/Availability/Browse"
WINDOWS = [
    {"Id": 1, "Name": "AM", "StartHour": 8, "StartMinute": 0, "EndHour": 12, "EndMinute": 0},
    {"Id": 2, "Name": "PM", "StartHour": 12, "StartMinute": 0, "EndHour": 16, "EndMinute": 0},
    {
        "Id": 3,
        "Name": "School run",
        "StartHour": 9,
        "StartMinute": 30,
        "EndHour": 14,
        "EndMinute": 30,
    },
    {"Id": 4, "Name": "All day", "StartHour": 8, "StartMinute": 0, "EndHour": 16, "EndMinute": 0},
]


def last_sunday(year: int, month: int) -> date:
    d = date(year, month, 31)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def next_change(month: int) -> date:
    """The next last-Sunday-of-``month`` at least three days away."""
    year = today_london().year
    for y in (year, year + 1):
        d = last_sunday(y, month)
        if d >= today_london() + timedelta(days=3):
            return d
    raise AssertionError


def browse_reply(request: httpx.Request) -> httpx.Response:
    q = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
    first = date.fromisoformat(q["StartDate"])
    days = [first + timedelta(days=i) for i in range(int(q["Weeks"]) * 7)]
    return httpx.Response(
        200,
        json={
            "PlanningWindows": WINDOWS,
            "AvailabilityPlanningWindows": [
                {
                    "PlanningWindowId": w["Id"],
                    "AvailabilityDays": [
                        {"Date": d.isoformat(), "AvailabilityStatus": 0 if d.weekday() >= 5 else 1}
                        for d in days
                    ],
                }
                for w in WINDOWS
            ],
        },
    )


@pytest.fixture
async def tm(tmp_path: Path) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{BASE}/identity/connect/token").mock(
            return_value=httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        )
        route = mock.get(BROWSE).mock(side_effect=browse_reply)
        a = make_adaptor(tmp_path, BASE)
        yield a, route
        await a.close()


@pytest.mark.parametrize("month,before,after", [(3, "+00:00", "+01:00"), (10, "+01:00", "+00:00")])
async def test_offsets_on_both_sides_of_a_clock_change(
    tm: Any, month: int, before: str, after: str
) -> None:
    a, _ = tm
    sunday = next_change(month)
    friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
    page = await a.availability(query(start=friday, page_size=8))
    by_day: dict[date, list[Any]] = {}
    for s in page.slots:
        by_day.setdefault(date.fromisoformat(s.start.isoformat()[:10]), []).append(s)
    assert set(by_day) == {friday, monday}  # the weekend has no availability
    for day, offset in ((friday, before), (monday, after)):
        rendered = [
            (s.start.isoformat()[11:], s.end.isoformat()[11:], s.label) for s in by_day[day]
        ]
        assert rendered == [
            (f"08:00:00{offset}", f"12:00:00{offset}", "morning"),
            (f"08:00:00{offset}", f"16:00:00{offset}", "all_day"),
            (f"09:30:00{offset}", f"14:30:00{offset}", "school_run"),
            (f"12:00:00{offset}", f"16:00:00{offset}", "afternoon"),
        ]
    # The wall clock stays 08:00 across the change, so the UTC instant moves by an hour.
    fri_am, mon_am = by_day[friday][0].start, by_day[monday][0].start
    assert (mon_am.astimezone(UTC) - fri_am.astimezone(UTC)) == timedelta(
        days=3, hours=-1 if month == 3 else 1
    )


async def test_pages_continue_with_the_cursor_without_gaps_or_repeats(tm: Any) -> None:
    a, _ = tm
    start = next_change(3) + timedelta(days=1)  # a Monday
    everything = (await a.availability(query(start=start, page_size=40))).slots
    seen: list[Any] = []
    page = await a.availability(query(start=start, page_size=6))
    while True:
        seen.extend(page.slots)
        if page.resume is None or len(seen) >= 40:
            break
        page = await a.availability(query(start=start, page_size=6, resume=page.resume))
    assert [(s.start, s.end) for s in seen[:40]] == [(s.start, s.end) for s in everything]
    assert all(
        s.start < t.start or (s.start == t.start and s.end < t.end)
        for s, t in zip(seen, seen[1:], strict=False)
    )


async def test_browse_query_and_one_call_per_chunk(tm: Any) -> None:
    a, route = tm
    start = next_change(10) + timedelta(days=1)
    page = await a.availability(query(start=start, page_size=10))
    assert len(page.slots) == 10 and page.resume is not None
    assert route.call_count == 1  # two weeks of windows easily fill a page
    q = parse_qs(urlsplit(str(route.calls.last.request.url)).query)
    assert q == {
        "WorkType": ["PLUMBING"],
        "Duration": ["60"],
        "PostCode": ["LN1 1AA"],
        "StartDate": [start.isoformat()],
        "Weeks": ["2"],
    }
    assert route.calls.last.request.headers["accept"] == "application/json; version=3"


async def test_long_jobs_only_get_windows_they_fit(tm: Any) -> None:
    a, _ = tm
    q = query(start=next_change(10) + timedelta(days=1), page_size=5)
    q = q.model_copy(update={"job": q.job.model_copy(update={"duration_minutes": 360})})
    page = await a.availability(q)
    assert page.slots and {s.label for s in page.slots} == {"all_day"}


async def test_nothing_past_the_horizon(tmp_path: Path) -> None:
    with respx.mock() as mock:
        mock.post(f"{BASE}/identity/connect/token").mock(
            return_value=httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        )
        mock.get(BROWSE).mock(side_effect=browse_reply)
        a = make_adaptor(tmp_path, BASE, horizon_days=7)
        try:
            page = await a.availability(query(page_size=50))
        finally:
            await a.close()
    last = today_london() + timedelta(days=7)
    assert page.slots and page.resume is None
    assert all(date.fromisoformat(s.start.isoformat()[:10]) <= last for s in page.slots)

"""CSV fallback at adaptor level: property files, the calendar, DST, bank holidays."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from adaptors.csv_fallback import CsvFallbackAdaptor, CsvFallbackConfig
from adaptors.csv_fallback.calendar import Calendar
from adaptors.csv_fallback.config import CalendarConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.timeutil import LONDON


def adaptor(tmp_path: Path, csv_text: str, **opts: object) -> CsvFallbackAdaptor:
    (tmp_path / "props.csv").write_text(csv_text)
    cfg = CsvFallbackConfig.model_validate({"properties_file": "props.csv", **opts})
    ctx = AdaptorContext(council="c", name="csv", config_dir=tmp_path, data_dir=tmp_path / "d")
    return CsvFallbackAdaptor(cfg, ctx)


async def test_common_hms_export_layout_is_accepted(tmp_path: Path) -> None:
    a = adaptor(
        tmp_path,
        "PlaceReference,AddressLine,PostCode\n"
        '000123,"4 High Street, Lincoln",ln1 1aa\n'
        "000124,6 High Street,LN1 1AA\n",
    )
    await a.start()
    props = await a.addresses("LN1 1AA")
    assert [p.id for p in props] == ["000123", "000124"]  # zero padding kept
    assert props[0].address_lines == ["4 High Street", "Lincoln"]
    assert (await a.get_property("000124")).postcode == "LN1 1AA"  # type: ignore[union-attr]
    assert await a.get_property("123") is None


async def test_index_is_rebuilt_when_the_file_changes(tmp_path: Path) -> None:
    a = adaptor(tmp_path, "PlaceReference,AddressLine,PostCode\n1,A,LN1 1AA\n")
    await a.start()
    assert len(await a.addresses("LN1 1AA")) == 1
    (tmp_path / "props.csv").write_text(
        "PlaceReference,AddressLine,PostCode\n1,A,LN1 1AA\n2,B,LN1 1AA\n"
    )
    b = adaptor(tmp_path, (tmp_path / "props.csv").read_text())
    await b.start()
    assert len(await b.addresses("LN1 1AA")) == 2


async def test_a_broken_property_file_is_a_clear_unavailable(tmp_path: Path) -> None:
    a = adaptor(tmp_path, "property_id,address_line_1,postcode,kind\n1,A,LN1 1AA,castle\n")
    with pytest.raises(BackendUnavailable, match="kind: unknown kind 'castle'"):
        await a.start()


def test_calendar_skips_weekends_bank_holidays_and_closed_dates() -> None:
    cal = Calendar(CalendarConfig(closed_dates=[date(2026, 12, 24)]))
    days = {s[0].date() for s in cal.slots(date(2026, 12, 21), date(2026, 12, 31), 60)}
    assert date(2026, 12, 24) not in days  # closed by the council
    assert date(2026, 12, 25) not in days and date(2026, 12, 28) not in days  # bank holidays
    assert date(2026, 12, 26) not in days and date(2026, 12, 27) not in days  # weekend
    assert date(2026, 12, 29) in days


def test_calendar_slots_keep_wall_clock_across_clock_changes() -> None:
    cal = Calendar(
        CalendarConfig(
            working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], bank_holidays=None
        )
    )
    # clocks go forward on 2026-03-29 and back on 2026-10-25
    for day, offset in [
        (date(2026, 3, 28), 0),
        (date(2026, 3, 30), 1),
        (date(2026, 10, 24), 1),
        (date(2026, 10, 26), 0),
    ]:
        first = next(iter(cal.slots(day, day, 60)))
        assert first[0].astimezone(LONDON).time() == time(8, 0)
        assert first[0].utcoffset() == timedelta(hours=offset)


def test_long_jobs_only_get_long_enough_slots() -> None:
    cal = Calendar(CalendarConfig())
    slots = list(cal.slots(date(2026, 12, 1), date(2026, 12, 1), 480))
    assert [(s[0].hour, s[1].hour, s[2]) for s in slots] == [(8, 16, "all_day")]
    assert datetime(2026, 12, 1, tzinfo=LONDON) <= slots[0][0]

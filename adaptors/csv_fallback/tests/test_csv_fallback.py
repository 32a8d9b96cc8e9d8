"""CSV fallback at adaptor level: property files, the calendar, DST, bank holidays."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from adaptors.csv_fallback import CsvFallbackAdaptor, CsvFallbackConfig, properties
from adaptors.csv_fallback import adaptor as csv_adaptor
from adaptors.csv_fallback.calendar import Calendar
from adaptors.csv_fallback.config import CalendarConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.timeutil import LONDON


def adaptor(
    tmp_path: Path, csv_text: str | None, council: str = "c", **opts: object
) -> CsvFallbackAdaptor:
    if csv_text is not None:
        (tmp_path / "props.csv").write_text(csv_text)
    cfg = CsvFallbackConfig.model_validate({"properties_file": "props.csv", **opts})
    ctx = AdaptorContext(council=council, name="csv", config_dir=tmp_path, data_dir=tmp_path / "d")
    return CsvFallbackAdaptor(cfg, ctx)


EXPORT = "PlaceReference,AddressLine,PostCode\n1,A,LN1 1AA\n"


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(properties, name)

    def counted(*args: object, **kw: object) -> object:
        calls.append(1)
        return real(*args, **kw)

    for module in (properties, csv_adaptor):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, counted)
    return calls


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


async def test_councils_reading_one_file_share_its_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = count_calls(monkeypatch, "build_index")
    a = adaptor(tmp_path, EXPORT, council="a")
    await a.start()
    b = adaptor(tmp_path, None, council="b")
    checks = count_calls(monkeypatch, "index_is_current")
    await b.start()
    assert b._index is a._index and len(builds) == 1 and not checks  # opened nothing
    assert [p.name for p in (tmp_path / "d" / "csv_fallback").iterdir()] == [b.index_path.name]
    assert b.index_path.name.startswith("props-")
    assert [p.id for p in await b.addresses("LN1 1AA")] == ["1"]
    # what a council writes stays its own; what its configuration decides is shared
    assert a.calendar is b.calendar and a._usage_cache is not b._usage_cache
    other = adaptor(tmp_path, None, council="o", calendar={"capacity": 3})
    assert other.calendar is not a.calendar and other.calendar.capacity("plumbing") == 3


async def test_a_reimport_is_seen_by_the_next_adaptor_to_start(tmp_path: Path) -> None:
    a = adaptor(tmp_path, EXPORT, council="a")
    await a.start()
    before = a._index
    # `repairs-gateway properties import --force` replaces the index file
    assert a.import_properties(force=True) == 1
    b = adaptor(tmp_path, None, council="b")
    await b.start()
    assert b._index is not before and a._index is before  # a serving adaptor keeps its own
    # and a deleted index (it is a cache) is built again
    b.index_path.unlink()
    c = adaptor(tmp_path, None, council="c2")
    await c.start()
    assert c._index is not b._index and c.index_path.is_file()
    assert len(await c.addresses("LN1 1AA")) == 1


async def test_prepare_readies_the_shared_index_and_leaves_problems_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = adaptor(tmp_path, EXPORT, council="a")
    await a.prepare()
    assert a._index is None and a.index_path.is_file()  # nothing of its own started
    threads = count_calls(monkeypatch, "shared_index")
    await a.start()
    assert a._index is not None and not threads  # start found it open
    missing = adaptor(tmp_path, None, council="m", properties_file="nowhere.csv")
    await missing.prepare()  # quietly: start says why
    with pytest.raises(BackendUnavailable, match="not found"):
        await missing.start()


async def test_a_broken_file_is_not_read_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = count_calls(monkeypatch, "build_index")
    broken = "property_id,address_line_1,postcode,kind\n1,A,LN1 1AA,castle\n"
    for council in ("a", "b"):
        with pytest.raises(BackendUnavailable, match="kind: unknown kind 'castle'"):
            await adaptor(tmp_path, broken if council == "a" else None, council=council).start()
    assert len(builds) == 1
    fixed = adaptor(tmp_path, EXPORT, council="c")
    await fixed.start()
    assert len(builds) == 2 and len(await fixed.addresses("LN1 1AA")) == 1


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

"""The CSV diary's pages: residents asking for the same job are answered from one page while
its usage is kept, and that page never offers a slot taken here or one that has started."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adaptors.csv_fallback import CsvFallbackAdaptor, CsvFallbackConfig
from adaptors.csv_fallback import adaptor as csv_adaptor
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingOrder,
    Contact,
    JobSize,
    JobSpec,
    Trade,
)
from repairs_gateway_sdk.testing.store import sqlite_store
from repairs_gateway_sdk.timeutil import today_london

PROPERTIES = "PlaceReference,AddressLine,PostCode\n1,1 High St,LN1 1AA\n2,2 High St,LN1 1AA\n"
JOB = JobSpec(trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60)


async def started(tmp_path: Path) -> CsvFallbackAdaptor:
    (tmp_path / "props.csv").write_text(PROPERTIES)
    cfg = CsvFallbackConfig.model_validate(
        {"properties_file": "props.csv", "calendar": {"capacity": 1}}
    )
    store = sqlite_store(tmp_path / "store", CsvFallbackAdaptor.store_namespace)
    ctx = AdaptorContext(
        council="c", name="csv", config_dir=tmp_path, data_dir=tmp_path / "d", store=store
    )
    a = CsvFallbackAdaptor(cfg, ctx)
    await a.start()
    return a


async def page(a: CsvFallbackAdaptor, property_id: str) -> list[str]:
    prop = await a.get_property(property_id)
    assert prop is not None
    query = AvailabilityQuery(property=prop, job=JOB, start_from=today_london(), page_size=5)
    return [s.vendor["key"] for s in (await a.availability(query)).slots]


def count_usage_reads(a: CsvFallbackAdaptor, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = a._read_usage

    async def counted(*args: object) -> dict[str, int]:
        reads.append(1)
        return await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(a, "_read_usage", counted)
    return reads


async def test_residents_asking_for_the_same_job_share_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await started(tmp_path)
    reads = count_usage_reads(a, monkeypatch)
    first, second = await page(a, "1"), await page(a, "2")
    assert first == second and len(first) == 5
    assert len(reads) == 1


async def test_a_slot_booked_here_is_not_offered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await started(tmp_path)
    reads = count_usage_reads(a, monkeypatch)
    offered = await page(a, "1")
    prop = await a.get_property("1")
    assert prop is not None
    query = AvailabilityQuery(property=prop, job=JOB, start_from=today_london(), page_size=5)
    slot = (await a.availability(query)).slots[0]
    order = BookingOrder(
        reference="REP-1", property=prop, job=JOB, slot=slot, description="tap", contact=Contact()
    )
    await a.book(order)
    after = await page(a, "2")
    assert offered[0] not in after and after[:4] == offered[1:]  # capacity 1: it is full
    assert len(reads) == 2  # the booking forgot the page and its usage


async def test_a_kept_page_whose_first_slot_has_started_is_worked_out_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await started(tmp_path)
    prop = await a.get_property("1")
    assert prop is not None
    query = AvailabilityQuery(property=prop, job=JOB, start_from=today_london(), page_size=5)
    slots = (await a.availability(query)).slots
    real_now = csv_adaptor.now
    moment = slots[0].start + timedelta(minutes=1)
    # the same day's clock moved on (not the date: the page's days stay the same)
    monkeypatch.setattr(csv_adaptor, "now", lambda: moment)
    again = (await a.availability(query)).slots
    assert slots[0].start not in [s.start for s in again]
    assert all(s.start > moment for s in again)
    monkeypatch.setattr(csv_adaptor, "now", real_now)

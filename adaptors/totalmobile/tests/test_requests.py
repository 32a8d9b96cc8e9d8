"""What the adaptor sends and how it reads Totalmobile's answers (respx)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from adaptors.totalmobile import client as client_module
from repairs_gateway_sdk.errors import (
    BackendRejected,
    BackendUnavailable,
    InvalidInput,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import RepairStatus, Trade, VendorSlot
from repairs_gateway_sdk.timeutil import at_london, parse_clock

from .conftest import make_adaptor
from .factories import handle, next_weekday, order, query

BASE = "https://tm.example"
OPT = f"{BASE}/api/optimise/worlds/housing-repairs"
SC = f"{BASE}/api/serviceconnect/worlds/housing-repairs"
DAY = next_weekday()
SLOT = VendorSlot(
    start=at_london(DAY, parse_clock("08:00")),
    end=at_london(DAY, parse_clock("12:00")),
    label="morning",
    vendor={"d": DAY.isoformat(), "w": 1},
)
VISIT = {
    "VisitExternalId": "V0000001",
    "PrimaryOrderNumber": "GW-1",
    "Date": DAY.isoformat(),
    "PlanningWindowId": 1,
    "Start": SLOT.start.isoformat(),
    "End": SLOT.end.isoformat(),
}


def job(status: str = "Unscheduled", visit: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"identity": {"reference": "GW-1"}, "status": status, "appointment": visit}


@pytest.fixture
async def tm(tmp_path: Path) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{BASE}/identity/connect/token").mock(
            return_value=httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        )
        a = make_adaptor(
            tmp_path,
            BASE,
            work_type_map={"plumbing": {"work_type": "PLUMB", "skills": ["PL1", "GAS-SAFE"]}},
        )
        yield a, mock
        await a.close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    return waited


async def test_book_creates_the_job_then_books_the_window(tm: Any) -> None:
    a, mock = tm
    create = mock.post(f"{OPT}/jobs").mock(return_value=httpx.Response(201, json=job()))
    book = mock.post(f"{SC}/Booking").mock(return_value=httpx.Response(201, json=VISIT))
    conf = await a.book(order("GW-1", SLOT))

    sent = json.loads(create.calls.last.request.content)
    assert sent["identity"] == {"reference": "GW-1"}
    assert sent["workType"] == "PLUMB"
    assert sent["skills"] == [
        {"identity": {"reference": "PL1"}},
        {"identity": {"reference": "GAS-SAFE"}},
    ]
    assert sent["duration"] == 60
    assert sent["location"]["reference"] == "00012345"
    assert sent["location"]["addressDetail"] == {
        "addressLine1": "Flat 1",
        "addressLine2": "2 High Street",
        "addressLine3": "Lincoln",
        "addressLine4": "",
        "postCode": "LN1 1AA",
    }
    assert sent["contact"] == {"name": "Ann Example"}
    extra = {p["name"]: p["value"] for p in sent["additionalProperties"]}
    assert extra["contactPhone"] == "07700900123"
    assert extra["sorCode"] == "N373049"
    assert extra["gatewayReference"] == "GW-1"
    assert sent["description"] == "Kitchen tap leaking"
    assert "end" in sent["dueDate"]
    assert create.calls.last.request.headers["authorization"] == "Bearer tok"

    assert json.loads(book.calls.last.request.content) == {
        "PrimaryOrderNumber": "GW-1",
        "Date": DAY.isoformat(),
        "PlanningWindowId": 1,
    }
    assert book.calls.last.request.headers["accept"] == "application/json; version=3"

    assert (conf.start, conf.end, conf.label) == (SLOT.start, SLOT.end, "morning")
    assert conf.vendor_order_ref == "GW-1" and conf.vendor_booking_ref == "V0000001"


async def test_book_again_finds_the_existing_job_instead_of_a_duplicate(tm: Any) -> None:
    a, mock = tm
    create = mock.post(f"{OPT}/jobs").mock(
        return_value=httpx.Response(
            409, json={"errors": [{"code": "DuplicateReference", "message": "exists"}]}
        )
    )
    mock.get(f"{OPT}/jobs/GW-1").mock(
        return_value=httpx.Response(200, json=job("Scheduled", VISIT))
    )
    book = mock.post(f"{SC}/Booking")
    conf = await a.book(order("GW-1", SLOT))
    assert create.call_count == 1
    assert book.call_count == 0  # already booked in that window by the first attempt
    assert conf.vendor_booking_ref == "V0000001"


async def test_lost_create_reply_is_looked_up_before_any_retry(tm: Any) -> None:
    a, mock = tm
    create = mock.post(f"{OPT}/jobs").mock(side_effect=httpx.ReadTimeout("lost"))
    lookup = mock.get(f"{OPT}/jobs/GW-1").mock(return_value=httpx.Response(200, json=job()))
    mock.post(f"{SC}/Booking").mock(return_value=httpx.Response(201, json=VISIT))
    await a.book(order("GW-1", SLOT))
    assert create.call_count == 1
    assert lookup.call_count == 1


async def test_create_retried_once_only_when_the_lookup_finds_nothing(tm: Any) -> None:
    a, mock = tm
    create = mock.post(f"{OPT}/jobs").mock(
        side_effect=[httpx.Response(500), httpx.Response(201, json=job())]
    )
    lookup = mock.get(f"{OPT}/jobs/GW-1").mock(return_value=httpx.Response(404))
    mock.post(f"{SC}/Booking").mock(return_value=httpx.Response(201, json=VISIT))
    await a.book(order("GW-1", SLOT))
    assert (create.call_count, lookup.call_count) == (2, 1)


async def test_slot_gone_deletes_the_new_job_then_raises(tm: Any) -> None:
    a, mock = tm
    mock.post(f"{OPT}/jobs").mock(return_value=httpx.Response(201, json=job()))
    mock.post(f"{SC}/Booking").mock(
        return_value=httpx.Response(
            409, json={"errors": [{"code": "PlanningWindowUnavailable", "message": "full"}]}
        )
    )
    delete = mock.delete(f"{OPT}/jobs/GW-1").mock(return_value=httpx.Response(204))
    with pytest.raises(SlotUnavailable):
        await a.book(order("GW-1", SLOT))
    assert json.loads(delete.calls.last.request.content) == {
        "deletionReason": {"reference": "SLOT_UNAVAILABLE"}
    }


async def test_bad_request_is_a_clear_rejection(tm: Any) -> None:
    a, mock = tm
    mock.post(f"{OPT}/jobs").mock(
        return_value=httpx.Response(
            400,
            json={
                "errors": [
                    {"code": "UnknownWorkType", "message": "workType is not defined in this world"}
                ]
            },
        )
    )
    with pytest.raises(BackendRejected) as err:
        await a.book(order("GW-1", SLOT))
    assert "UnknownWorkType" in err.value.detail  # the vendor's code, for council IT
    assert "workType is not defined" not in err.value.detail  # free text never travels


async def test_writes_are_not_retried_on_throttling(tm: Any, sleeps: list[float]) -> None:
    a, mock = tm
    create = mock.post(f"{OPT}/jobs").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "7"})
    )
    with pytest.raises(BackendUnavailable) as err:
        await a.book(order("GW-1", SLOT))
    assert err.value.retry_after == 7
    assert create.call_count == 1 and sleeps == []


async def test_reads_honour_retry_after(tm: Any, sleeps: list[float]) -> None:
    a, mock = tm
    route = mock.get(f"{OPT}/jobs/GW-1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=job()),
        ]
    )
    st = await a.status(handle("GW-1"))
    assert st.status == RepairStatus.AWAITING_APPOINTMENT
    assert route.call_count == 2
    assert len(sleeps) == 1 and 2 <= sleeps[0] < 2.2


async def test_reads_fail_fast_when_told_to_wait_long(tm: Any, sleeps: list[float]) -> None:
    a, mock = tm
    route = mock.get(f"{OPT}/jobs/GW-1").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "120"})
    )
    with pytest.raises(BackendUnavailable) as err:
        await a.status(handle("GW-1"))
    assert err.value.retry_after == 120
    assert route.call_count == 1 and sleeps == []


async def test_reads_retry_5xx_and_timeouts_a_bounded_number_of_times(
    tm: Any, sleeps: list[float]
) -> None:
    a, mock = tm
    route = mock.get(f"{OPT}/jobs/GW-1").mock(
        side_effect=[httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(500)]
    )
    with pytest.raises(BackendUnavailable):
        await a.status(handle("GW-1"))
    assert route.call_count == 3 and len(sleeps) == 2


async def test_read_recovers_after_one_failure(tm: Any, sleeps: list[float]) -> None:
    a, mock = tm
    mock.get(f"{OPT}/jobs/GW-1").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(200, json=job("Completed", VISIT)),
        ]
    )
    st = await a.status(handle("GW-1"))
    assert st.status == RepairStatus.COMPLETED and st.start == SLOT.start


async def test_cancel_deletes_with_a_reason_and_absent_is_fine(tm: Any) -> None:
    a, mock = tm
    route = mock.delete(f"{OPT}/jobs/GW-1").mock(
        side_effect=[httpx.Response(204), httpx.Response(404)]
    )
    await a.cancel(handle("GW-1"), "Resident no longer needs it")
    await a.cancel(handle("GW-1"), "booking failed")
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert bodies == [
        {"deletionReason": {"reference": "CUSTOMER_CANCELLED"}},
        {"deletionReason": {"reference": "BOOKING_FAILED"}},
    ]


@pytest.mark.parametrize(
    "vendor,ours",
    [
        ("Unscheduled", RepairStatus.AWAITING_APPOINTMENT),
        ("Scheduled", RepairStatus.BOOKED),
        ("Allocated", RepairStatus.BOOKED),
        ("InProgress", RepairStatus.IN_PROGRESS),
        ("Completed", RepairStatus.COMPLETED),
    ],
)
async def test_status_from_the_job(tm: Any, vendor: str, ours: RepairStatus) -> None:
    a, mock = tm
    mock.get(f"{OPT}/jobs/GW-1").mock(return_value=httpx.Response(200, json=job(vendor, VISIT)))
    assert (await a.status(handle("GW-1"))).status == ours


async def test_status_of_a_missing_job_is_cancelled(tm: Any) -> None:
    a, mock = tm
    mock.get(f"{OPT}/jobs/GW-1").mock(return_value=httpx.Response(404))
    assert (await a.status(handle("GW-1"))).status == RepairStatus.CANCELLED


async def test_reschedule_books_another_window_for_the_same_job(tm: Any) -> None:
    a, mock = tm
    pm = VendorSlot(
        start=SLOT.start + timedelta(hours=4),
        end=SLOT.end + timedelta(hours=4),
        label="afternoon",
        vendor={"d": DAY.isoformat(), "w": 2},
    )
    book = mock.post(f"{SC}/Booking").mock(
        return_value=httpx.Response(
            201,
            json={
                **VISIT,
                "PlanningWindowId": 2,
                "Start": pm.start.isoformat(),
                "End": pm.end.isoformat(),
                "VisitExternalId": "V0000002",
            },
        )
    )
    conf = await a.reschedule(handle("GW-1"), pm)
    assert json.loads(book.calls.last.request.content)["PlanningWindowId"] == 2
    assert conf.label == "afternoon" and conf.vendor_booking_ref == "V0000002"


async def test_slot_from_another_scheduler_is_refused(tm: Any) -> None:
    a, _ = tm
    foreign = SLOT.model_copy(update={"vendor": {"key": "x"}})
    with pytest.raises(InvalidInput) as err:
        await a.book(order("GW-1", foreign))
    assert err.value.field == "slot_token"


async def test_unmapped_trade_is_invalid_input(tm: Any) -> None:
    a, _ = tm
    q = query()
    q = q.model_copy(update={"job": q.job.model_copy(update={"trade": Trade.ROOFING})})
    with pytest.raises(InvalidInput):
        await a.availability(q)

"""Unit tests with respx: replies are recorded fixtures (fixtures/*.response.xml, re-record with
``python -m adaptors.civica_uh.tests.record_fixtures``); assertions are on the SOAP bodies sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from lxml import etree

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.errors import BackendRejected, BackendUnavailable
from repairs_gateway_sdk.model import (
    Contact,
    JobSize,
    JobSpec,
    Priority,
    PropertyKind,
    Trade,
    WorksOrder,
)

from .conftest import SUBSET_WSDL
from .record_fixtures import fixture_name

FIXTURES = Path(__file__).parent / "fixtures"
NS = "http://schemas.civica.co.uk/UHWeb/2013/03"
BASE = "http://uh.council.test/UHWeb"


class Backend:
    """Answers each request with the recorded reply named after its operation and key."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, etree._Element]] = []
        self.overrides: dict[str, httpx.Response] = {}
        self.errors: list[Exception] = []  # raised, in order, before answering

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers.get("soapaction", "")
        op = action.strip('"').rsplit("/", 1)[-1]
        self.sent.append((op, etree.fromstring(request.content)))
        if self.errors:
            raise self.errors.pop(0)
        if op in self.overrides:
            return self.overrides[op]
        name = fixture_name(request.content, action)
        again = FIXTURES / f"{name}_again.response.xml"
        if again.exists() and sum(1 for o, _ in self.sent if o == op) > 1:
            return httpx.Response(
                200, content=again.read_bytes(), headers={"content-type": "text/xml"}
            )
        path = FIXTURES / f"{name}.response.xml"
        return httpx.Response(
            200, content=path.read_bytes(), headers={"content-type": "text/xml; charset=utf-8"}
        )

    def bodies(self, op: str) -> list[etree._Element]:
        return [b for o, b in self.sent if o == op]


def find(body: etree._Element, path: str) -> str | None:
    return body.findtext(".//" + "/".join(f"{{{NS}}}{p}" for p in path.split("/")))


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(url__startswith=BASE).mock(side_effect=b)
        yield b


@pytest.fixture
def uh(make_adaptor: Callable[..., CivicaUHAdaptor], backend: Backend) -> CivicaUHAdaptor:
    return make_adaptor(
        {
            "property_wsdl": str(SUBSET_WSDL),
            "property_endpoint": f"{BASE}/PropertyService.svc",
            "repair_endpoint": f"{BASE}/RepairService.svc",
            "username": "gateway",
            "password": "secret",
            "source_system": "REPAIRSGW",
            "user_id": 42,
            "company_code": "001",
            "supplier_reference": "H01",
        }
    )


def order(**kw: Any) -> WorksOrder:
    base: dict[str, Any] = dict(
        reference="K7QH-3M9T",
        property_id="00030001",
        job=JobSpec(
            sor_code="20060020",
            trade=Trade.PLUMBING,
            size=JobSize.SMALL,
            duration_minutes=60,
            priority=Priority.EMERGENCY,
        ),
        description="Kitchen tap dripping",
        contact=Contact(name="Sam", phone="07700900123"),
    )
    base.update(kw)
    return WorksOrder(**base)


async def test_postcode_search_sends_the_webrequest_header(
    uh: CivicaUHAdaptor, backend: Backend
) -> None:
    props = await uh.addresses("LN5 7CC")
    [body] = backend.bodies("GetPropertyListByPostCode")
    assert find(body, "dto/PostCode") == "LN5 7CC"
    assert find(body, "dto/MaxRecords") == "500"
    assert find(body, "dto/SourceSystem") == "REPAIRSGW"
    assert find(body, "dto/UserId") == "42"
    assert find(body, "dto/CompanyCode") == "001"
    assert find(body, "dto/DirectUser/UserName") == "gateway"
    assert find(body, "dto/DirectUser/UserPassword") == "secret"
    refs = sorted(
        find(b, "dto/PropertyReference") or "" for b in backend.bodies("GetPropertyByRef")
    )
    assert refs == ["00030000", "00030001", "00030002", "00030003"]
    kinds = {p.id: p.kind for p in props}
    assert kinds["00030000"] == PropertyKind.COMMUNAL_BLOCK


async def test_property_details_are_cached_briefly(uh: CivicaUHAdaptor, backend: Backend) -> None:
    await uh.addresses("LN5 7CC")
    await uh.addresses("LN5 7CC")
    assert len(backend.bodies("GetPropertyListByPostCode")) == 2
    assert len(backend.bodies("GetPropertyByRef")) == 4


async def test_works_order_request_body(uh: CivicaUHAdaptor, backend: Backend) -> None:
    ref = await uh.raise_works_order(order())
    assert ref == "00100001"
    [lookup] = backend.bodies("GetRepairRequestByReference")
    assert find(lookup, "dto/RequestReference") == "K7QH-3M9T"
    [body] = backend.bodies("CreateRepairWithOrder")
    assert find(body, "dto/RepairRequest/RequestReference") == "K7QH-3M9T"
    assert find(body, "dto/RepairRequest/PropertyRef") == "00030001"
    assert find(body, "dto/RepairRequest/Priority") == "E"
    assert find(body, "dto/RepairRequest/Problem") == "Kitchen tap dripping"
    assert find(body, "dto/RepairRequest/Phone") == "07700900123"
    assert find(body, "dto/TaskList/RepairTaskInfo/JobCode") == "20060020"
    assert find(body, "dto/TaskList/RepairTaskInfo/PriorityCode") == "E"
    assert find(body, "dto/TaskList/RepairTaskInfo/SupplierReference") == "H01"
    assert find(body, "dto/TaskList/RepairTaskInfo/PropertyReference") == "00030001"


async def test_existing_order_is_returned_without_creating(
    uh: CivicaUHAdaptor, backend: Backend
) -> None:
    backend.sent.append(("GetRepairRequestByReference", etree.Element("x")))  # use "_again"
    ref = await uh.raise_works_order(order())
    assert ref == "00100001"
    assert backend.bodies("CreateRepairWithOrder") == []
    assert len(backend.bodies("GetWorksOrdersByRequest")) == 1


async def test_create_is_never_retried(uh: CivicaUHAdaptor, backend: Backend) -> None:
    backend.overrides["CreateRepairWithOrder"] = httpx.Response(502, text="Bad gateway")
    with pytest.raises(BackendUnavailable):
        await uh.raise_works_order(order())
    assert len(backend.bodies("CreateRepairWithOrder")) == 1


async def test_success_false_is_rejected_without_leaking_the_message(
    uh: CivicaUHAdaptor, backend: Backend
) -> None:
    refusal = (FIXTURES / "GetRepairRequestByReference_K7QH3M9T.response.xml").read_bytes()
    refusal = refusal.replace(b"GetRepairRequestByReference", b"GetPropertyListByPostCode")
    refusal = refusal.replace(b"Repair request not found", b"Invalid post code for Sam")
    refusal = refusal.replace(b'<RepairRequest i:nil="true"/>', b"")
    backend.overrides["GetPropertyListByPostCode"] = httpx.Response(
        200, content=refusal, headers={"content-type": "text/xml"}
    )
    with pytest.raises(BackendRejected) as caught:
        await uh.addresses("LN5 7CC")
    assert "Sam" not in caught.value.detail
    assert len(backend.bodies("GetPropertyListByPostCode")) == 1  # answers are not retried


async def test_reads_are_retried_on_connection_errors(
    uh: CivicaUHAdaptor, backend: Backend
) -> None:
    backend.errors = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
    assert len(await uh.addresses("LN5 7CC")) == 4
    assert len(backend.bodies("GetPropertyListByPostCode")) == 3


async def test_missing_optional_elements_are_tolerated(
    uh: CivicaUHAdaptor, backend: Backend
) -> None:
    bare = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b'<GetPropertyAlertsResponse xmlns="' + NS.encode() + b'">'
        b"<GetPropertyAlertsResult/></GetPropertyAlertsResponse></s:Body></s:Envelope>"
    )
    backend.overrides["GetPropertyAlerts"] = httpx.Response(
        200, content=bare, headers={"content-type": "text/xml"}
    )
    assert await uh.operative_notes("00012003") == ["ASB:HZ0003"]

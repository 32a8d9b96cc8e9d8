"""The simulator rejects what real UH would reject and publishes its WSDL."""

from __future__ import annotations

import httpx
from lxml import etree

from .conftest import Sim

NS = "http://schemas.civica.co.uk/UHWeb/2013/03"
ACTION = f"{NS}/IPropertyService/GetPropertyListByPostCode"


def envelope(dto: str, op: str = "GetPropertyListByPostCode") -> str:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<{op} xmlns="{NS}"><dto>{dto}</dto></{op}></s:Body></s:Envelope>'
    )


GOOD = (
    "<DirectUser><UserName>gateway</UserName><UserPassword>secret</UserPassword>"
    "</DirectUser><SourceSystem>T</SourceSystem><UserId>1</UserId>"
    "<PostCode>LN1 1AA</PostCode>"
)


def post(sim: Sim, body: str, action: str = ACTION) -> httpx.Response:
    return httpx.post(
        sim.property_url,
        content=body,
        timeout=5,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'},
    )


def faultstring(response: httpx.Response) -> str:
    root = etree.fromstring(response.content)
    return str(root.findtext(".//faultstring"))


def test_wsdl_is_published_with_its_own_address(sim: Sim) -> None:
    response = httpx.get(f"{sim.property_url}?wsdl", timeout=5)
    assert response.status_code == 200
    assert sim.property_url.encode() in response.content
    assert b"GetPropertyListByPostCode" in response.content


def test_a_valid_request_is_answered(sim: Sim) -> None:
    response = post(sim, envelope(GOOD))
    assert response.status_code == 200
    assert response.content.count(b"<PropertySummary>") == 5


def test_missing_required_user_id_is_a_fault(sim: Sim) -> None:
    response = post(sim, envelope(GOOD.replace("<UserId>1</UserId>", "")))
    assert response.status_code == 500
    assert "deserialize" in faultstring(response)


def test_elements_out_of_order_are_a_fault(sim: Sim) -> None:
    swapped = GOOD.replace(
        "<SourceSystem>T</SourceSystem><UserId>1</UserId>",
        "<UserId>1</UserId><SourceSystem>T</SourceSystem>",
    )
    assert post(sim, envelope(swapped)).status_code == 500


def test_wrong_soap_action_is_a_fault(sim: Sim) -> None:
    response = post(sim, envelope(GOOD), action=f"{NS}/IPropertyService/Nope")
    assert "ContractFilter" in faultstring(response)


def test_bad_credentials_are_a_fault(sim: Sim) -> None:
    response = post(sim, envelope(GOOD.replace("secret", "guess")))
    assert "Authentication failed" in faultstring(response)


def test_dtd_in_a_request_is_refused(sim: Sim) -> None:
    body = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + envelope(GOOD)
    assert "DTD" in faultstring(post(sim, body))


def test_fault_switch_is_counted_and_reset(sim: Sim) -> None:
    sim.faults(mode="http500", times=1)
    assert post(sim, envelope(GOOD)).status_code == 500
    assert post(sim, envelope(GOOD)).status_code == 200
    assert httpx.post(f"{sim.base}/_sim/faults", json={"mode": "nope"}).status_code == 400

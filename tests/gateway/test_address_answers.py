"""`addresses` answers, and the properties appointments and bookings look up, are kept
briefly per council (the hot path): never failures or properties not found, never past
their lifetime, never across councils, and never past a reload of the council."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import service
from repairs_gateway_sdk.errors import BackendUnavailable
from tests.gatewaykit import demo_council, running_gateway


async def test_answers_are_kept_briefly_and_failures_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo, files = demo_council()
    other, _ = demo_council(name="Other Borough Council")
    async with running_gateway(tmp_path, {"demo": demo, "other": other}, files) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        real = adaptor.addresses
        calls = 0

        async def counted(postcode: str) -> list[Any]:
            nonlocal calls
            calls += 1
            return await real(postcode)

        adaptor.addresses = counted  # type: ignore[method-assign]
        url = "/v1/councils/demo/addresses"
        first = await gw.client.get(url, params={"postcode": "ln1 1aa"})
        again = await gw.client.get(url, params={"postcode": "LN11AA"})  # same postcode
        assert first.status_code == again.status_code == 200
        assert first.content == again.content and calls == 1
        assert first.json()["postcode"] == "LN1 1AA"
        other_council = await gw.client.get(
            "/v1/councils/other/addresses", params={"postcode": "LN1 1AA"}
        )
        assert other_council.json()["council"] == "other"  # never another council's answer

        async def down(postcode: str) -> list[Any]:
            raise BackendUnavailable("down")

        adaptor.addresses = down  # type: ignore[method-assign]
        r = await gw.client.get(url, params={"postcode": "LN1 1AB"})  # not kept: asks
        assert r.status_code == 503
        adaptor.addresses = counted  # type: ignore[method-assign]
        r = await gw.client.get(url, params={"postcode": "LN1 1AB"})
        assert r.status_code == 200  # the failure was not kept

        gw.runtime.gateway._address_answers.seconds = -1.0  # every answer expired
        before = calls
        await gw.client.get(url, params={"postcode": "LN1 1AA"})
        await gw.client.get(url, params={"postcode": "LN1 1AA"})
        assert calls == before + 2


async def test_a_property_is_looked_up_once_for_its_pages_and_booking(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        adaptor = gw.runtime.councils["demo"].adaptors["demo_csv"]
        real = adaptor.get_property
        asked: list[str] = []

        async def counted(property_id: str) -> Any:
            asked.append(property_id)
            return await real(property_id)

        adaptor.get_property = counted  # type: ignore[method-assign]
        url = "/v1/councils/demo/appointments"
        found = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        pid = found.json()["addresses"][0]["id"]
        for _ in range(3):
            r = await gw.client.get(url, params={"property_id": pid, "sor_code": "N631111"})
            assert r.status_code == 200, r.text
        assert asked == [pid]
        r = await gw.client.get(url, params={"property_id": "NOPE-1", "sor_code": "N631111"})
        r2 = await gw.client.get(url, params={"property_id": "NOPE-1", "sor_code": "N631111"})
        assert r.status_code == r2.status_code == 422
        assert r.json()["errors"][0]["field"] == "property_id"
        assert asked == [pid, "NOPE-1", "NOPE-1"]  # not found is never kept

        async def down(property_id: str) -> Any:
            raise BackendUnavailable("down")

        gw.runtime.gateway._properties.seconds = -1.0  # what was kept has expired
        adaptor.get_property = down  # type: ignore[method-assign]
        r = await gw.client.get(url, params={"property_id": pid, "sor_code": "N631111"})
        assert r.status_code == 503  # a failing source is answered honestly, not hidden
        adaptor.get_property = counted  # type: ignore[method-assign]
        r = await gw.client.get(url, params={"property_id": pid, "sor_code": "N631111"})
        assert r.status_code == 200 and asked[-1] == pid  # the source is asked again


def test_what_is_kept_is_tied_to_the_council_object() -> None:
    class Council:
        def __init__(self, id: str) -> None:
            self.id = id

    kept: service.Recent[str] = service.Recent(60.0, 2)
    before, reloaded = Council("demo"), Council("demo")
    kept.put(before, "LN1 1AA", "answer")  # type: ignore[arg-type]
    assert kept.get(before, "LN1 1AA") == "answer"  # type: ignore[arg-type]
    assert kept.get(reloaded, "LN1 1AA") is None  # type: ignore[arg-type]
    assert kept.get(Council("other"), "LN1 1AA") is None  # type: ignore[arg-type]
    kept.put(before, "a", "1")  # type: ignore[arg-type]
    kept.put(before, "b", "2")  # type: ignore[arg-type]
    assert kept.get(before, "LN1 1AA") is None  # type: ignore[arg-type]  # the oldest went

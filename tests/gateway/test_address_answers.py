"""`addresses` answers are kept briefly per council and postcode (the hot path), never
failures, never past their lifetime, and never across councils."""

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

        monkeypatch.setattr(service, "ADDRESS_ANSWER_SECONDS", -1.0)  # every answer expired
        before = calls
        await gw.client.get(url, params={"postcode": "LN1 1AA"})
        await gw.client.get(url, params={"postcode": "LN1 1AA"})
        assert calls == before + 2

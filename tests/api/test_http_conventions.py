"""HTTP as the conventions say, and an OpenAPI document a generator and a person can use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.gatewaykit import demo_council, running_gateway

V1 = "/v1/councils/demo"


async def test_answers_with_personal_data_are_never_cached_and_carry_rate_limits(
    tmp_path: Path,
) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        key = await gw.create_key(["demo"], rate_per_minute=300)
        async with gw.client_for(key) as c:
            first = await c.get(f"{V1}/addresses", params={"postcode": "LN1 1AA"})
            second = await c.get(f"{V1}/addresses", params={"postcode": "LN1 1AA"})
        assert first.headers["cache-control"] == "no-store"
        assert first.headers["ratelimit-policy"] == '"per-key";q=300;w=60'
        left = [
            int(re.search(r";r=(\d+)", r.headers["ratelimit"]).group(1)) for r in (first, second)
        ]  # type: ignore[union-attr]
        assert left[0] == 299 and left[1] == 298
        reset = int(re.search(r";t=(\d+)", first.headers["ratelimit"]).group(1))  # type: ignore[union-attr]
        assert 1 <= reset <= 60
        health = await gw.client.get("/health/live")
        assert "no-store" not in health.headers.get("cache-control", "")


async def test_bodies_that_are_not_json_get_415(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        r = await gw.client.post(
            f"{V1}/repairs",
            data={"property_id": "00012345"},  # a form post
            headers={"Idempotency-Key": "k"},
        )
        assert r.status_code == 415
        assert r.json()["type"].endswith("/unsupported-media-type")
        r = await gw.client.post(
            f"{V1}/repairs/ABCD-1234/cancel",
            content=b"reason=x",
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 415
        r = await gw.client.post(f"{V1}/repairs/ABCD-1234/cancel")  # no body at all is fine
        assert r.status_code == 404
        r = await gw.client.post(
            f"{V1}/repairs",
            content=b"{not json",
            headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


async def test_cors_allows_every_header_the_api_accepts(tmp_path: Path) -> None:
    demo, files = demo_council(cors_origins=["https://repairs.demo.gov.uk"])
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        r = await gw.client.options(
            f"{V1}/repairs",
            headers={
                "Origin": "https://repairs.demo.gov.uk",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, idempotency-key, content-type",
            },
        )
        assert r.status_code == 200
        allowed = r.headers["access-control-allow-headers"].lower()
        for h in ("x-api-key", "idempotency-key", "content-type", "authorization"):
            assert h in allowed
        r = await gw.client.get(
            f"{V1}/addresses",
            params={"postcode": "LN1 1AA"},
            headers={"Origin": "https://repairs.demo.gov.uk"},
        )
        exposed = r.headers["access-control-expose-headers"].lower()
        for h in ("ratelimit", "retry-after", "location", "x-request-id"):
            assert h in exposed


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


async def test_the_openapi_document_is_complete_enough_to_generate_from(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        doc = (await gw.client.get("/openapi.json")).json()
        schemas = doc["components"]["schemas"]
        ops = {
            (path, method): op
            for path, item in doc["paths"].items()
            if path.startswith("/v1/")
            for method, op in item.items()
        }
        ids = {op["operationId"] for op in ops.values()}
        assert {
            "listAddresses",
            "listAppointments",
            "createRepair",
            "getRepair",
            "rescheduleRepair",
            "cancelRepair",
        } <= ids
        for op in ops.values():
            assert re.fullmatch(r"[a-z][A-Za-z]+", op["operationId"]), op["operationId"]
            assert "400" not in op["responses"]  # bad JSON is a 422 like every bad input
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (
                        op["operationId"],
                        status,
                    )
                    assert "example" in content["application/problem+json"]
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                ref = schema.get("$ref") or next(x["$ref"] for x in schema["anyOf"] if "$ref" in x)
                assert schemas[ref.rsplit("/", 1)[1]].get("examples")
        # only the errors an operation can really give
        get_repair = ops[("/v1/councils/{council}/repairs/{reference}", "get")]
        assert "409" not in get_repair["responses"] and "415" not in get_repair["responses"]
        create = ops[("/v1/councils/{council}/repairs", "post")]
        assert {"409", "415", "503"} <= set(create["responses"])
        assert "Location" in create["responses"]["201"]["headers"]
        assert "Retry-After" in create["responses"]["503"]["headers"]
        assert "RateLimit" in create["responses"]["201"]["headers"]
        # typed problems, each documented on a page the gateway serves
        slot = schemas["SlotUnavailableProblem"]
        assert slot["properties"]["type"]["enum"] == [
            "https://repairs-gateway.dev/problems/slot-unavailable"
        ]
        page = await gw.client.get("/problems/slot-unavailable")
        assert page.status_code == 200 and "Fetch appointments again" in page.text
        assert (await gw.client.get("/problems/nonsense")).status_code == 404
        # times are date-times; vocabularies are enums
        repair = schemas["RepairOut"]["properties"]
        assert repair["created_at"]["format"] == "date-time"
        for name in ("status", "trade", "size", "priority"):
            assert "$ref" in repair[name] or "enum" in repair[name], name
        for name in ("RepairOut", "SlotPage", "AddressList", "RepairIn"):
            assert schemas[name].get("examples"), name
        for p in create["parameters"]:
            if p["in"] == "header":
                assert p["name"] == "idempotency-key" or p["name"] == "Idempotency-Key"

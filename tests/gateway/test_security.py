"""Keys, roles, council isolation, rate limits, CORS and request size limits."""

from __future__ import annotations

import re
from pathlib import Path

from tests.gatewaykit import demo_council, running_gateway


def two_councils() -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    demo, files = demo_council()
    other, _ = demo_council(name="Other Borough Council")
    return {"demo": demo, "other": other}, files


async def book_one(client, council: str, key: str = "k") -> str:  # type: ignore[no-untyped-def]
    slots = (
        await client.get(
            f"/v1/councils/{council}/appointments",
            params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
        )
    ).json()["slots"]
    r = await client.post(
        f"/v1/councils/{council}/repairs",
        headers={"Idempotency-Key": key},
        json={
            "property_id": "00012345",
            "sor_code": "N631111",
            "description": "Tap drips",
            "contact": {"phone": "07700900111"},
            "slot_token": slots[0]["slot_token"],
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


async def test_every_v1_route_refuses_no_key_and_another_councils_key(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        other_key = await gw.create_key(["other"], role="admin")
        spec = gw.app.openapi()["paths"]
        routes = [(p, m.upper()) for p, ops in spec.items() if p.startswith("/v1/") for m in ops]
        assert len(routes) >= 8
        async with (
            gw.client_for(None) as anon,
            gw.client_for(other_key) as wrong,
            gw.client_for("rgw_nope_nope") as bad,
        ):
            for template, method in routes:
                path = re.sub(r"\{council\}", "demo", template)
                path = re.sub(r"\{reference\}", "ABCD-1234", path)
                r = await anon.request(method, path)
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"
                r = await bad.request(method, path)
                assert r.status_code == 401, (method, path)
                r = await wrong.request(method, path)
                assert r.status_code == 403, (method, path, r.status_code)


async def test_references_do_not_leak_across_councils_or_clients(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        fe_demo = await gw.create_key(["demo"])
        fe_both = await gw.create_key(["demo", "other"])
        async with gw.client_for(fe_demo) as mine, gw.client_for(fe_both) as theirs:
            ref = await book_one(mine, "demo")
            assert (await mine.get(f"/v1/councils/demo/repairs/{ref}")).status_code == 200
            # same reference asked for in another council: indistinguishable from unknown
            r1 = await theirs.get(f"/v1/councils/other/repairs/{ref}")
            r2 = await theirs.get("/v1/councils/other/repairs/ZZZZ-9999")
            assert r1.status_code == r2.status_code == 404
            assert r1.json()["detail"].replace(ref, "X") == r2.json()["detail"].replace(
                "ZZZZ-9999", "X"
            )
            # a front-end only sees the repairs it created
            assert (await theirs.get(f"/v1/councils/demo/repairs/{ref}")).status_code == 404
            r = await theirs.post(f"/v1/councils/demo/repairs/{ref}/cancel")
            assert r.status_code == 404
            # admins of the council see everything; front-ends cannot reach admin routes
            assert (await gw.client.get(f"/v1/councils/demo/repairs/{ref}")).status_code == 200
            r = await mine.get("/v1/councils/demo/admin/migration-report")
            assert r.status_code == 403


async def test_revoked_key_and_rate_limit(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        slow = await gw.runtime.keys.create("slow", ["demo"], "frontend", rate_per_minute=3)
        async with gw.client_for(slow) as c:
            codes = [
                (await c.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"}))
                for _ in range(4)
            ]
        assert [r.status_code for r in codes[:3]] == [200, 200, 200]
        assert codes[3].status_code == 429 and int(codes[3].headers["retry-after"]) >= 1
        key = await gw.create_key(["demo"])
        assert await gw.runtime.keys.revoke(key.split("_")[1])
        async with gw.client_for(key) as c:
            r = await c.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
        assert r.status_code == 401


async def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        key = await gw.create_key(["demo"])
        rows = await gw.runtime.keys.list()
        assert all(key not in (r.key_hash, r.key_id) for r in rows)
        assert key.split("_", 2)[2] not in (tmp_path / "gateway.db").read_bytes().decode("latin-1")


async def test_cors_is_closed_by_default_and_opened_per_council(tmp_path: Path) -> None:
    councils, files = two_councils()
    councils["other"]["cors_origins"] = ["https://repairs.other.gov.uk"]
    async with running_gateway(tmp_path, councils, files) as gw:
        pre = {"Origin": "https://repairs.other.gov.uk", "Access-Control-Request-Method": "GET"}
        r = await gw.client.options("/v1/councils/other/addresses", headers=pre)
        assert r.headers.get("access-control-allow-origin") == "https://repairs.other.gov.uk"
        r = await gw.client.options("/v1/councils/demo/addresses", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        r = await gw.client.get(
            "/v1/councils/other/addresses",
            params={"postcode": "LN1 1AA"},
            headers={"Origin": "https://evil.example"},
        )
        assert "access-control-allow-origin" not in r.headers


async def test_oversized_bodies_are_refused(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        r = await gw.client.post(
            "/v1/councils/demo/repairs",
            content=b"x" * 200_000,
            headers={"Idempotency-Key": "big", "content-type": "application/json"},
        )
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"


async def test_health_is_open_and_reveals_nothing_sensitive(tmp_path: Path) -> None:
    councils, files = two_councils()
    async with running_gateway(tmp_path, councils, files) as gw:
        async with gw.client_for(None) as anon:
            r = await anon.get("/health")
        assert r.status_code == 200
        assert "sqlite" not in r.text and str(tmp_path) not in r.text

"""OAuth2 client credentials: one token, cached, refreshed once, shared (respx)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from adaptors.totalmobile.auth import TokenManager
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendUnavailable

from .conftest import make_adaptor
from .factories import handle

BASE = "https://tm.example"
TOKEN_URL = f"{BASE}/identity/connect/token"
JOB_URL = f"{BASE}/api/optimise/worlds/housing-repairs/jobs/GW-1"
JOB = {"identity": {"reference": "GW-1"}, "status": "Unscheduled", "appointment": None}


def token_reply(value: str = "t1", expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": value, "token_type": "Bearer", "expires_in": expires_in}
    )


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@respx.mock
async def test_token_request_is_a_client_credentials_form() -> None:
    route = respx.post(TOKEN_URL).mock(return_value=token_reply())
    async with httpx.AsyncClient(base_url=BASE) as http:
        tm = TokenManager(
            http,
            token_url="/identity/connect/token",
            client_id="cid",
            client_secret="sec",
            scope="optimise serviceconnect",
        )
        assert await tm.token() == "t1"
    form = parse_qs(route.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": ["sec"],
        "scope": ["optimise serviceconnect"],
    }
    assert route.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"


@respx.mock
async def test_token_is_cached_until_shortly_before_expiry() -> None:
    route = respx.post(TOKEN_URL).mock(side_effect=[token_reply("t1", 600), token_reply("t2")])
    clock = Clock()
    async with httpx.AsyncClient(base_url=BASE) as http:
        tm = TokenManager(
            http,
            token_url="/identity/connect/token",
            client_id="c",
            client_secret="s",
            scope="x",
            margin_seconds=60,
            clock=clock,
        )
        assert await tm.token() == "t1"
        clock.t += 539  # 61 s before expiry: still good
        assert await tm.token() == "t1"
        clock.t += 2  # 59 s before expiry: inside the margin, refreshed
        assert await tm.token() == "t2"
    assert route.call_count == 2


@respx.mock
async def test_short_lived_token_is_not_trusted_past_half_its_life() -> None:
    respx.post(TOKEN_URL).mock(side_effect=[token_reply("t1", 30), token_reply("t2", 30)])
    clock = Clock()
    async with httpx.AsyncClient(base_url=BASE) as http:
        tm = TokenManager(
            http,
            token_url="/identity/connect/token",
            client_id="c",
            client_secret="s",
            scope="x",
            margin_seconds=60,
            clock=clock,
        )
        assert await tm.token() == "t1"
        clock.t += 16
        assert await tm.token() == "t2"


@respx.mock
async def test_concurrent_requests_share_one_token_fetch(tmp_path: Path) -> None:
    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return token_reply()

    token = respx.post(TOKEN_URL).mock(side_effect=slow_token)
    jobs = respx.get(url__regex=rf"{BASE}/api/optimise/worlds/housing-repairs/jobs/.*").mock(
        return_value=httpx.Response(200, json=JOB)
    )
    a = make_adaptor(tmp_path, BASE)
    try:
        await asyncio.gather(*(a.status(handle("GW-1")) for _ in range(20)))
    finally:
        await a.close()
    assert token.call_count == 1
    assert jobs.call_count == 20
    assert all(c.request.headers["authorization"] == "Bearer t1" for c in jobs.calls)


@respx.mock
async def test_a_401_refreshes_the_token_once_and_retries(tmp_path: Path) -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[token_reply("old"), token_reply("new")])
    job = respx.get(JOB_URL).mock(side_effect=[httpx.Response(401), httpx.Response(200, json=JOB)])
    a = make_adaptor(tmp_path, BASE)
    try:
        st = await a.status(handle("GW-1"))
    finally:
        await a.close()
    assert st.status == "awaiting_appointment"
    assert token.call_count == 2
    assert [c.request.headers["authorization"] for c in job.calls] == ["Bearer old", "Bearer new"]


@respx.mock
async def test_concurrent_401s_cause_a_single_refresh(tmp_path: Path) -> None:
    """Ten requests in flight with a revoked token: one refresh, all ten succeed."""
    token = respx.post(TOKEN_URL).mock(
        side_effect=[token_reply("old"), token_reply("new"), token_reply("extra")]
    )

    async def by_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # keep the ten requests in flight together
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401)
        return httpx.Response(200, json=JOB)

    respx.get(JOB_URL).mock(side_effect=by_token)
    a = make_adaptor(tmp_path, BASE)
    try:
        await a.client.tokens.token()  # "old" is cached, then revoked by the vendor
        results = await asyncio.gather(*(a.status(handle("GW-1")) for _ in range(10)))
    finally:
        await a.close()
    assert len(results) == 10
    assert token.call_count == 2  # "old", then a single refresh to "new"


@respx.mock
async def test_a_second_401_is_an_auth_failure(tmp_path: Path) -> None:
    respx.post(TOKEN_URL).mock(side_effect=[token_reply("a"), token_reply("b")])
    respx.get(JOB_URL).mock(return_value=httpx.Response(401))
    a = make_adaptor(tmp_path, BASE)
    try:
        with pytest.raises(BackendAuthFailed):
            await a.status(handle("GW-1"))
    finally:
        await a.close()


@respx.mock
async def test_a_403_is_an_auth_failure_without_refresh(tmp_path: Path) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=token_reply())
    respx.get(JOB_URL).mock(
        return_value=httpx.Response(
            403, json={"errors": [{"code": "Forbidden", "message": "token lacks scope optimise"}]}
        )
    )
    a = make_adaptor(tmp_path, BASE)
    try:
        with pytest.raises(BackendAuthFailed):
            await a.status(handle("GW-1"))
    finally:
        await a.close()
    assert token.call_count == 1


@pytest.mark.parametrize("status,error", [(401, "invalid_client"), (400, "invalid_client")])
@respx.mock
async def test_refused_credentials_are_an_auth_failure(
    tmp_path: Path, status: int, error: str
) -> None:
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(status, json={"error": error}))
    a = make_adaptor(tmp_path, BASE)
    try:
        with pytest.raises(BackendAuthFailed):
            await a.check_health()
    finally:
        await a.close()


@respx.mock
async def test_token_service_outage_is_unavailable(tmp_path: Path) -> None:
    respx.post(TOKEN_URL).mock(side_effect=httpx.ConnectTimeout("boom"))
    a = make_adaptor(tmp_path, BASE)
    try:
        with pytest.raises(BackendUnavailable):
            await a.check_health()
    finally:
        await a.close()

"""Issue 10, "contain every failure": a hostile or broken vendor reply never takes down more
than its own request. The Totalmobile adaptor against a hostile HTTP server of the test's
own on loopback (``repairs_gateway_sdk.testing.hostile``): a 50 MB reply, an endless body, a
gzip bomb and a slow-loris, on the token call and after it.

Outer ``asyncio.timeout`` guards only stop a test that would otherwise hang on today's code;
no assertion is about how long anything took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adaptors.totalmobile import TotalmobileAdaptor, TotalmobileConfig
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.model import BookingHandle, JobSize, JobSpec, Trade
from repairs_gateway_sdk.testing.hostile import CAP, TOKEN, HostileServer, context, guarded


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    async with HostileServer() as s:
        yield s


@pytest.fixture
async def made() -> AsyncIterator[list[Any]]:
    adaptors: list[Any] = []
    yield adaptors
    for a in adaptors:
        await a.close()


def tm(tmp: Path, made: list[Any], url: str, **options: Any) -> TotalmobileAdaptor:
    config = TotalmobileConfig.model_validate(
        {
            "base_url": url,
            "client_id": "repairs-gateway",
            "client_secret": "s3cret",
            "world": "housing-repairs",
            "timeout_seconds": 2,
            "read_attempts": 1,
            "max_reply_bytes": CAP,
            **options,
        }
    )
    adaptor = TotalmobileAdaptor(config, context(tmp, "tm"))
    made.append(adaptor)
    return adaptor


HANDLE = BookingHandle(
    reference="HOST-0001",
    property_id="000123",
    job=JobSpec(sor_code="20060020", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60),
)


@pytest.mark.parametrize("mode", ["big", "endless", "gzip"])
async def test_totalmobile_refuses_a_reply_over_the_cap(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.size, server.shape = mode, 50_000_000, "json"
    server.answers = {b"/connect/token": TOKEN}
    adaptor = tm(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable, match=f"larger than {CAP} bytes"):
        await guarded(adaptor.status(HANDLE))


async def test_totalmobile_slow_loris_stops_at_the_deadline(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval, server.shape = "slow", 0.2, "json"
    server.answers = {b"/connect/token": TOKEN}
    adaptor = tm(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded(adaptor.status(HANDLE))


async def test_totalmobile_slow_token_stops_at_the_deadline(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval, server.shape = "slow", 0.2, "json"
    adaptor = tm(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded(adaptor.check_health())

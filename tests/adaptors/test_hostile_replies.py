"""Issue 10, "contain every failure": a hostile or broken vendor reply never takes down more
than its own request. Each adaptor against a hostile HTTP server of the test's own on loopback
(tests/hostile.py): a 50 MB well-formed reply, an endless body, a gzip bomb, a slow-loris, an
empty 200, HTML error pages, and a slow or huge WSDL.

Outer ``asyncio.timeout`` guards only stop a test that would otherwise hang on today's code;
no assertion is about how long anything took.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adaptors.civica_uh import CivicaUHAdaptor
from adaptors.kirona_drs import KironaDRSAdaptor, KironaDRSConfig
from adaptors.totalmobile import TotalmobileAdaptor, TotalmobileConfig
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendUnavailable
from repairs_gateway_sdk.model import BookingHandle, JobSize, JobSpec, Trade
from repairs_gateway_sdk.replies import PARSE_THREADS
from tests.hostile import DRS_SESSION, TOKEN, HostileServer

ROOT = Path(__file__).resolve().parents[2]
UH_WSDL = ROOT / "adaptors" / "civica_uh" / "wsdl" / "PropertyService.wsdl"
DRS_WSDL = ROOT / "adaptors" / "kirona_drs" / "wsdl" / "drs-subset.wsdl"
CAP = 1024 * 1024  # the tests' max_reply_bytes: far below what the hostile server sends
GUARD = 30.0  # seconds before a test that would hang on today's code gives up
T = TypeVar("T")


async def guarded(call: Awaitable[T]) -> T:
    async with asyncio.timeout(GUARD):
        return await call


def ctx(tmp: Path, name: str) -> AdaptorContext:
    return AdaptorContext(council="hostile", name=name, config_dir=tmp, data_dir=tmp)


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    async with HostileServer() as s:
        yield s


@pytest.fixture
async def made(tmp_path: Path) -> AsyncIterator[list[Any]]:
    adaptors: list[Any] = []
    yield adaptors
    for a in adaptors:
        await a.close()


def uh(tmp: Path, made: list[Any], url: str, **options: Any) -> CivicaUHAdaptor:
    config = CivicaUHAdaptor.Config(
        **{
            "property_wsdl": str(UH_WSDL),
            "property_endpoint": f"{url}/PropertyService.svc",
            "repair_endpoint": f"{url}/RepairService.svc",
            "timeout_seconds": 2,
            "read_attempts": 1,
            "max_reply_bytes": CAP,
            "cache_seconds": 0,
            **options,
        }
    )
    adaptor = CivicaUHAdaptor(config, ctx(tmp, "uh"))
    made.append(adaptor)
    return adaptor


def drs(tmp: Path, made: list[Any], url: str, **options: Any) -> KironaDRSAdaptor:
    config = KironaDRSConfig.model_validate(
        {
            "wsdl": str(DRS_WSDL),
            "endpoint": f"{url}/DRSService",
            "login": "gateway",
            "password": "drs-secret",
            "contract": "RESPONSIVE",
            "user_id": "REPAIRSGW",
            "timeout_seconds": 2,
            "read_attempts": 1,
            "max_reply_bytes": CAP,
            **options,
        }
    )
    adaptor = KironaDRSAdaptor(config, ctx(tmp, "drs"))
    made.append(adaptor)
    return adaptor


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
    adaptor = TotalmobileAdaptor(config, ctx(tmp, "tm"))
    made.append(adaptor)
    return adaptor


HANDLE = BookingHandle(
    reference="HOST-0001",
    property_id="000123",
    job=JobSpec(sor_code="20060020", trade=Trade.PLUMBING, size=JobSize.SMALL, duration_minutes=60),
)


# -- 1. replies larger than the cap: refused, connection closed --------------------------------
@pytest.mark.parametrize("mode", ["big", "big_chunked", "endless", "gzip"])
async def test_uh_refuses_a_reply_over_the_cap(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.size = mode.removesuffix("_chunked"), 50_000_000
    server.chunked = mode.endswith("_chunked")
    adaptor = uh(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable, match=f"larger than {CAP} bytes"):
        await guarded(adaptor.addresses("LN1 1AA"))
    if mode != "gzip":  # a bomb is small on the wire: it may be all sent before the refusal
        assert await server.wait_for_disconnect(), "the connection must be closed, not drained"
        assert server.stats.bytes_sent < 50_000_000


@pytest.mark.parametrize("mode", ["big", "big_chunked", "endless", "gzip"])
async def test_drs_refuses_a_reply_over_the_cap(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.size = mode.removesuffix("_chunked"), 50_000_000
    server.chunked = mode.endswith("_chunked")
    adaptor = drs(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable, match=f"larger than {CAP} bytes"):
        await guarded(adaptor.check_health())
    if mode != "gzip":
        assert await server.wait_for_disconnect()


@pytest.mark.parametrize("mode", ["big", "endless", "gzip"])
async def test_totalmobile_refuses_a_reply_over_the_cap(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.size, server.shape = mode, 50_000_000, "json"
    server.answers = {b"/connect/token": TOKEN}
    adaptor = tm(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable, match=f"larger than {CAP} bytes"):
        await guarded(adaptor.status(HANDLE))


async def test_a_gzip_bomb_is_never_inflated_past_the_cap(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    """The cap is on decompressed bytes, and inflating stops there: a 200 MB bomb leaves the
    process's memory where it was (tracemalloc counts what Python allocated meanwhile)."""
    import tracemalloc

    server.mode, server.size = "gzip", 200_000_000
    adaptor = drs(tmp_path, made, server.url)
    tracemalloc.start()
    try:
        with pytest.raises(BackendUnavailable, match="larger than"):
            await guarded(adaptor.check_health())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * CAP, f"peak {peak} bytes while refusing a gzip bomb"


# -- 5. a total deadline per call, whatever the server trickles ------------------------------
async def test_drs_slow_loris_stops_at_the_deadline(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval = "slow", 0.2  # always within httpx's per-read timeout
    adaptor = drs(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded(adaptor.check_health())


async def test_drs_slow_loris_on_a_read_after_the_session(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval = "slow", 0.2
    server.answers = {b"openSession": DRS_SESSION}
    adaptor = drs(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable):
        await guarded(adaptor.status(HANDLE))
    assert await server.wait_for_disconnect()


async def test_uh_slow_loris_stops_at_the_deadline(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval = "slow", 0.2
    adaptor = uh(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded(adaptor.addresses("LN1 1AA"))


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


# -- 2. a slow or huge WSDL cannot hold start-up ---------------------------------------------
@pytest.mark.parametrize("mode", ["slow", "big"])
async def test_drs_start_is_bounded_by_its_deadline_when_the_wsdl_is_hostile(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.interval, server.size = mode, 0.2, 50_000_000
    adaptor = drs(
        tmp_path, made, server.url, wsdl=f"{server.url}/DRSService-{mode}?wsdl", timeout_seconds=1
    )
    with pytest.raises(BackendUnavailable):
        await guarded(adaptor.check_health())


@pytest.mark.parametrize("mode", ["slow", "big"])
async def test_uh_start_is_bounded_by_its_deadline_when_the_wsdl_is_hostile(
    server: HostileServer, made: list[Any], tmp_path: Path, mode: str
) -> None:
    server.mode, server.interval, server.size = mode, 0.2, 50_000_000
    adaptor = uh(
        tmp_path,
        made,
        server.url,
        property_wsdl=f"{server.url}/PropertyService-{mode}.svc?wsdl",
        timeout_seconds=1,
    )
    with pytest.raises(BackendUnavailable, match="service description"):
        await guarded(adaptor.start())


async def test_a_slow_wsdl_does_not_stall_the_event_loop(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    """While one adaptor's WSDL trickles in, the loop keeps serving: a ticker counts on."""
    server.mode, server.interval = "slow", 0.1
    adaptor = drs(tmp_path, made, server.url, wsdl=f"{server.url}/loop?wsdl", timeout_seconds=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(BackendUnavailable):
            await guarded(adaptor.check_health())
    finally:
        task.cancel()
    assert ticks > 10


# -- 3. an empty 200 is not "no properties" ---------------------------------------------------
async def test_uh_empty_200_is_an_outage_not_an_empty_list(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode = "empty"
    adaptor = uh(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable, match="empty reply"):
        await guarded(adaptor.addresses("LN1 1AA"))


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service is running</body></html>",
        b'<?xml version="1.0"?><Envelope><Body/></Envelope>',  # not in the SOAP namespace
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
    ],
    ids=["html-200", "not-soap-xml", "empty-soap-body"],
)
async def test_uh_non_soap_200_is_an_outage(
    server: HostileServer, made: list[Any], tmp_path: Path, body: bytes
) -> None:
    server.mode, server.body = "ok", body
    adaptor = uh(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable):
        await guarded(adaptor.addresses("LN1 1AA"))


async def test_drs_empty_200_is_an_outage(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode = "empty"
    adaptor = drs(tmp_path, made, server.url)
    with pytest.raises(BackendUnavailable):
        await guarded(adaptor.check_health())


# -- 4. HTML error pages: 5xx is an outage, 401/403 credentials, other 4xx an outage ------------
HTML_CASES = [
    ("html", 500, BackendUnavailable),
    ("html_bare", 500, BackendUnavailable),
    ("html", 503, BackendUnavailable),
    ("html_bare", 502, BackendUnavailable),
    ("html", 401, BackendAuthFailed),
    ("html_bare", 403, BackendAuthFailed),
    ("html", 404, BackendUnavailable),
    ("html_bare", 400, BackendUnavailable),
]


@pytest.mark.parametrize(("mode", "status", "error"), HTML_CASES)
async def test_drs_html_error_pages(
    server: HostileServer,
    made: list[Any],
    tmp_path: Path,
    mode: str,
    status: int,
    error: type[Exception],
) -> None:
    server.mode, server.status = mode, status
    adaptor = drs(tmp_path, made, server.url)
    with pytest.raises(error):
        await guarded(adaptor.check_health())


@pytest.mark.parametrize(("mode", "status", "error"), HTML_CASES)
async def test_drs_html_error_pages_on_reads(
    server: HostileServer,
    made: list[Any],
    tmp_path: Path,
    mode: str,
    status: int,
    error: type[Exception],
) -> None:
    server.mode, server.status = mode, status
    server.answers = {b"openSession": DRS_SESSION}
    adaptor = drs(tmp_path, made, server.url)
    with pytest.raises(error):
        await guarded(adaptor.status(HANDLE))


@pytest.mark.parametrize(("mode", "status", "error"), HTML_CASES)
async def test_uh_html_error_pages(
    server: HostileServer,
    made: list[Any],
    tmp_path: Path,
    mode: str,
    status: int,
    error: type[Exception],
) -> None:
    server.mode, server.status = mode, status
    adaptor = uh(tmp_path, made, server.url)
    with pytest.raises(error):
        await guarded(adaptor.addresses("LN1 1AA"))


# -- big but allowed replies are parsed off the event loop ------------------------------------
async def test_a_big_allowed_drs_reply_is_parsed_off_the_loop(
    server: HostileServer, made: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adaptors.kirona_drs.client as drs_client

    # a valid openSession reply padded (an element DRS's schema does not declare) to 600 KB
    padding = b"<padding>" + b"x" * 600_000 + b"</padding>"
    server.mode = "ok"
    server.body = DRS_SESSION.replace(b"</sessionId>", b"</sessionId>" + padding)
    threads: list[str] = []
    real = drs_client.check_reply

    def spy(reply: Any, operation: str) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real(reply, operation)

    monkeypatch.setattr(drs_client, "check_reply", spy)
    adaptor = drs(tmp_path, made, server.url)
    await guarded(adaptor.check_health())
    assert adaptor.client._session == "S1"
    assert threads and all(t.startswith("reply-parse") for t in threads), threads
    assert PARSE_THREADS <= 4  # a small, bounded pool

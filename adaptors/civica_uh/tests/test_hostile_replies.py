"""Issue 10, "contain every failure": a hostile or broken vendor reply never takes down more
than its own request. The Civica UH adaptor against a hostile HTTP server of the test's own
on loopback (``repairs_gateway_sdk.testing.hostile``): a 50 MB well-formed reply, an endless
body, a gzip bomb, a slow-loris, an empty or non-SOAP 200, HTML error pages and a slow or
huge WSDL.

Outer ``asyncio.timeout`` guards only stop a test that would otherwise hang on today's code;
no assertion is about how long anything took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.testing.hostile import (
    CAP,
    HTML_ERROR_PAGES,
    HostileServer,
    context,
    guarded,
)

from .conftest import SUBSET_WSDL


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


def uh(tmp: Path, made: list[Any], url: str, **options: Any) -> CivicaUHAdaptor:
    config = CivicaUHAdaptor.Config(
        **{
            "property_wsdl": str(SUBSET_WSDL),
            "property_endpoint": f"{url}/PropertyService.svc",
            "repair_endpoint": f"{url}/RepairService.svc",
            "timeout_seconds": 2,
            "read_attempts": 1,
            "max_reply_bytes": CAP,
            "cache_seconds": 0,
            **options,
        }
    )
    adaptor = CivicaUHAdaptor(config, context(tmp, "uh"))
    made.append(adaptor)
    return adaptor


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


async def test_uh_slow_loris_stops_at_the_deadline(
    server: HostileServer, made: list[Any], tmp_path: Path
) -> None:
    server.mode, server.interval = "slow", 0.2
    adaptor = uh(tmp_path, made, server.url, timeout_seconds=1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded(adaptor.addresses("LN1 1AA"))


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


@pytest.mark.parametrize(("mode", "status", "error"), HTML_ERROR_PAGES)
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

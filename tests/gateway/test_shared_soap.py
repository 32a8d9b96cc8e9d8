"""What adaptors share per process (one zeep client per WSDL document, connection pools per
backend origin) never carries one council's state into another's requests.

Adaptor-level tests of the SDK's soap/replies sharing; here, not under adaptors/, while the
adaptors' own tests are being moved."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from adaptors.civica_uh import CivicaUHAdaptor
from adaptors.civica_uh.config import CivicaUHConfig
from adaptors.kirona_drs import KironaDRSAdaptor
from adaptors.kirona_drs.config import KironaDRSConfig
from repairs_gateway_sdk import replies, soap
from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendUnavailable
from tests.simulators import free_port, running_simulator

UH = "{http://schemas.civica.co.uk/UHWeb/2013/03}"
WSA = "{http://www.w3.org/2005/08/addressing}"
DRS_WSDLS = Path(__file__).resolve().parents[2] / "adaptors" / "kirona_drs" / "wsdl"


@pytest.fixture(scope="module")
def uh_sim() -> Iterator[str]:
    with running_simulator("adaptors.civica_uh.simulator", ready_path="/_sim/health") as base:
        yield base


def _uh(base: str, council: str, **options: Any) -> CivicaUHAdaptor:
    config = CivicaUHConfig.model_validate(
        {
            "property_wsdl": f"{base}/PropertyService.svc?wsdl",
            "property_endpoint": f"{base}/PropertyService.svc",
            "repair_endpoint": f"{base}/RepairService.svc",
            "username": "gateway",
            "password": "secret",
            "user_id": 42,
            **options,
        }
    )
    context = AdaptorContext(
        council=council, name="uh", config_dir=Path("."), data_dir=Path("."), store=None
    )
    return CivicaUHAdaptor(config, context)


def _dto(envelope: bytes) -> tuple[dict[str, str | None], str | None]:
    doc = etree.fromstring(envelope)
    dto = doc.find(f".//{UH}dto")
    assert dto is not None
    fields = {etree.QName(e).localname: e.text for e in dto.iter() if e is not dto}
    return fields, doc.findtext(f".//{WSA}To")


async def test_councils_on_one_wsdl_share_its_client_but_send_their_own_credentials(
    uh_sim: str,
) -> None:
    a = _uh(uh_sim, "a", user_id=1)
    b = _uh(uh_sim, "b", username="other", password="wrong", user_id=2, company_code="B01")
    # the same UH host, another path: the endpoint is each council's own
    c = _uh(uh_sim, "c", property_endpoint=f"{uh_sim}/other/PropertyService.svc")
    try:
        for adaptor in (a, b, c):
            await adaptor.start()
        pa, pb, pc = (x._property for x in (a, b, c))
        assert pa is not None and pb is not None and pc is not None
        # one zeep client for the document, with nothing of any council in it
        assert pa.service.client is pb.service.client is pc.service.client
        shared = pa.service.client
        assert shared.wsse is None and not shared.plugins
        assert not shared.settings.extra_http_headers
        assert isinstance(shared.transport, soap.NeverSends)
        with pytest.raises(RuntimeError):
            await shared.transport.post("http://x", b"", {})
        # each council's own HTTP client
        assert len({id(x._http) for x in (a, b, c)}) == 3

        fields_a, to_a = _dto(
            pa.envelope("GetPropertyByRef", {**pa.header, "PropertyReference": "A1"})[0]
        )
        fields_b, to_b = _dto(pb.envelope("GetPropertyByRef", {**pb.header})[0])
        fields_c, to_c = _dto(pc.envelope("GetPropertyByRef", {**pc.header})[0])
        assert (fields_a["UserName"], fields_a["UserPassword"], fields_a["UserId"]) == (
            "gateway",
            "secret",
            "1",
        )
        assert (fields_b["UserName"], fields_b["UserPassword"], fields_b["UserId"]) == (
            "other",
            "wrong",
            "2",
        )
        assert fields_b["CompanyCode"] == "B01" and "CompanyCode" not in fields_a
        assert to_a == to_b == f"{uh_sim}/PropertyService.svc"
        assert to_c == f"{uh_sim}/other/PropertyService.svc"
        assert pc.service.address == to_c and pa.service.address == to_a

        # over the wire, interleaved on shared connections: B is refused (its own wrong
        # password went, not A's), A and then A again are answered
        assert await a.addresses("LN1 1AA")
        with pytest.raises(BackendAuthFailed):
            await b.addresses("LN1 1AA")
        assert await a.get_property("00012001") is not None
    finally:
        for adaptor in (a, b, c):
            await adaptor.close()


async def test_a_council_whose_uh_is_down_leaves_the_others_on_the_shared_pools(
    uh_sim: str,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    good = _uh(uh_sim, "good")
    # the WSDL from the live host (parsed already, shared), the service on a dead one
    down = _uh(uh_sim, "down", property_endpoint=f"{dead}/PropertyService.svc", read_attempts=1)
    try:
        await good.start()
        await down.start()  # starting calls no backend
        with pytest.raises(BackendUnavailable):
            await down.addresses("LN1 1AA")
        assert await good.addresses("LN1 1AA")
        await down.close()
        assert await good.addresses("LN2 4BB")  # closing one council's client: not the pools
    finally:
        await good.close()
        await down.close()


async def test_drs_adaptors_share_the_document_client_and_nothing_else(tmp_path: Path) -> None:
    wsdl = DRS_WSDLS
    made = []
    for i, login in enumerate(("one", "two")):
        config = KironaDRSConfig.model_validate(
            {
                "wsdl": str(wsdl / "drs-subset.wsdl"),
                "endpoint": f"http://127.0.0.1:9/drs{i}",
                "login": login,
                "password": f"pw-{login}",
                "contract": "C",
                "user_id": "U",
            }
        )
        ctx = AdaptorContext(council=f"c{i}", name="drs", config_dir=tmp_path, data_dir=tmp_path)
        made.append(KironaDRSAdaptor(config, ctx))
    try:
        (c1, s1), (c2, s2) = [await m.client._ensure_client() for m in made]
        assert c1 is c2 and s1 is not s2
        assert s1.address.endswith("/drs0") and s2.address.endswith("/drs1")
        assert s1.http is not s2.http
    finally:
        for m in made:
            await m.close()


# -- the shared connection pools ----------------------------------------------------------
class _Server:
    """A tiny HTTP/1.1 keep-alive server: counts connections, sets a cookie, echoes the
    Cookie header it was sent."""

    def __init__(self) -> None:
        self.connections = 0
        self.cookies: list[str | None] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                self.cookies.append(headers.get("cookie"))
                await self.hold.wait()
                body = b"ok"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    b"Set-Cookie: session=secret-of-whoever-asked; Path=/\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[_Server, str]]:
    s = _Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield s, f"http://127.0.0.1:{port}"
    finally:
        srv.close()


async def test_clients_share_connections_but_not_cookies(server: tuple[_Server, str]) -> None:
    s, base = server
    a, b = soap.client_for(5.0), soap.client_for(5.0)
    try:
        assert (await a.get(f"{base}/a")).status_code == 200
        assert (await b.get(f"{base}/b")).status_code == 200  # on A's connection
        assert (await a.get(f"{base}/a")).status_code == 200
        assert s.connections == 1
        # A's cookie goes back with A's requests only
        assert s.cookies == [None, None, "session=secret-of-whoever-asked"]
        await a.aclose()
        assert (await b.get(f"{base}/b")).status_code == 200  # the pool outlives A
        assert s.connections == 1
    finally:
        await a.aclose()
        await b.aclose()
    assert not replies._pools.get(asyncio.get_running_loop())  # closed with its last client


async def test_each_client_keeps_its_own_cap_on_connections(server: tuple[_Server, str]) -> None:
    s, base = server
    capped = replies.pooled_client(max_connections=1, timeout=httpx.Timeout(5.0, pool=0.2))
    other = replies.pooled_client(max_connections=4, timeout=5.0)
    try:
        s.hold.clear()
        first = asyncio.create_task(capped.get(f"{base}/1"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):  # its one connection is in use
            await capped.get(f"{base}/2")
        # another council on the same host is not held up by the first one's cap
        second = asyncio.create_task(other.get(f"{base}/3"))
        await asyncio.sleep(0.05)
        s.hold.set()
        assert (await first).status_code == 200 and (await second).status_code == 200
        assert (await capped.get(f"{base}/4")).status_code == 200  # the slot came back
    finally:
        s.hold.set()
        await capped.aclose()
        await other.aclose()


async def test_a_reply_over_the_cap_gives_the_slot_back(server: tuple[_Server, str]) -> None:
    s, base = server
    capped = replies.pooled_client(max_connections=1, timeout=httpx.Timeout(5.0, pool=0.5))
    try:
        for _ in range(3):
            with pytest.raises(replies.ReplyTooLarge):
                await replies.request(capped, "GET", f"{base}/x", max_bytes=1, system="test")
        assert (await capped.get(f"{base}/y")).status_code == 200
    finally:
        await capped.aclose()


class _Recorded:
    """An httpcore network stream that records what is sent through it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, float | None]] = []
        self.closed = False

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.sent.append((buffer, timeout))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"reply"

    async def aclose(self) -> None:
        self.closed = True

    async def start_tls(self, *args: Any, **kwargs: Any) -> _Recorded:
        return _Recorded()

    def get_extra_info(self, info: str) -> Any:
        return f"info:{info}"


async def test_a_request_is_sent_in_one_piece_when_its_reply_is_read() -> None:
    inner = _Recorded()
    stream = replies._OneSend(inner)  # type: ignore[arg-type]
    await stream.write(b"POST / HTTP/1.1\r\n\r\n", 5.0)
    await stream.write(b"", 5.0)
    await stream.write(b"<body/>", 5.0)
    assert inner.sent == []
    assert await stream.read(100, 1.0) == b"reply"
    assert inner.sent == [(b"POST / HTTP/1.1\r\n\r\n<body/>", 5.0)]
    assert await stream.read(100, 1.0) == b"reply"  # nothing held: nothing more sent
    assert len(inner.sent) == 1
    assert stream.get_extra_info("is_readable") == "info:is_readable"


async def test_big_bodies_are_not_held_and_tls_sends_what_is_held_first() -> None:
    inner = _Recorded()
    stream = replies._OneSend(inner)  # type: ignore[arg-type]
    big = b"x" * replies.HELD_BYTES
    await stream.write(b"head", 5.0)
    await stream.write(big, 5.0)  # the head goes first, then the big piece on its own
    assert inner.sent == [(b"head", 5.0), (big, 5.0)]
    await stream.write(b"a" * (replies.HELD_BYTES - 10), 5.0)
    await stream.write(b"b" * 20, 5.0)  # more than may be held: what is held goes first
    assert [len(b) for b, _ in inner.sent] == [4, len(big), replies.HELD_BYTES - 10]
    await stream.write(b"hello", 5.0)
    tls = await stream.start_tls(None)  # type: ignore[arg-type]
    assert inner.sent[-1] == (b"b" * 20 + b"hello", 5.0)
    assert isinstance(tls, replies._OneSend)
    await stream.write(b"unsent", 5.0)
    await stream.aclose()  # what was never read for is dropped with the connection
    assert inner.closed and inner.sent[-1][0] != b"unsent"


async def test_shared_pools_send_each_request_in_one_piece(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a real shared pool: one send per request on the socket's stream (httpcore's
    own makes two, head and body), and the server receives the whole request."""
    import httpcore._backends.anyio as anyio_backend

    sends: list[bytes] = []
    send = anyio_backend.AnyIOStream.write

    async def counted(self: Any, buffer: bytes, timeout: float | None = None) -> None:
        sends.append(buffer)
        await send(self, buffer, timeout)

    monkeypatch.setattr(anyio_backend.AnyIOStream, "write", counted)
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                received.append(chunk)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with soap.client_for(5.0) as http:
            for body in (b"<one/>", b"<two/>"):
                reply = await replies.request(
                    http, "POST", f"{base}/svc", content=body, max_bytes=100, system="test"
                )
                assert (reply.status_code, reply.content) == (200, b"ok")
        assert len(sends) == 2  # one a request
        assert sends[0].startswith(b"POST /svc HTTP/1.1\r\n")
        assert sends[0].endswith(b"\r\n\r\n<one/>") and sends[1].endswith(b"\r\n\r\n<two/>")
        assert b"".join(received) == b"".join(sends)
    finally:
        srv.close()


# -- requests from kept shapes ------------------------------------------------------------
UH_PROPERTY_WSDL = (
    Path(__file__).resolve().parents[2] / "adaptors/civica_uh/wsdl/PropertyService.wsdl"
)
TRICKY = [
    "00012001",
    "",
    " padded ",
    "Flat 1 & 2 <Annex> \"quoted\" 'single'",
    "line\nbreak\ttab\rreturn",
    "Ysgol Gymraeg Caerdydd – ŵŷ €",
    "emoji \U0001f3e0 beyond the BMP",
    "]]> <![CDATA[",
    "&amp; already escaped",
    "zqx0qz looks like a mark",
    ">1900000001<",
]


def _no_id(xml: bytes) -> bytes:
    return re.sub(rb">urn:uuid:[0-9a-f-]{36}<", b"><", xml)


async def test_requests_from_kept_shapes_are_zeeps_own_bytes() -> None:
    doc = soap.parsed_wsdl(str(UH_PROPERTY_WSDL))
    async with soap.client_for(5.0) as http:
        a = soap.bounded_service(
            doc, http, endpoint="http://a.test/P.svc", system="UH", timeout=5, max_reply_bytes=2**20
        )
        b = soap.bounded_service(
            doc, http, endpoint="https://b.test/x&y", system="UH", timeout=5, max_reply_bytes=2**20
        )

        def dto(value: str, user: int = 42) -> dict[str, Any]:
            return {
                "dto": {
                    "DirectUser": {"UserName": value, "UserPassword": "p<&>w"},
                    "SourceSystem": "REPAIRSGW",
                    "UserId": user,
                    "PropertyReference": value,
                }
            }

        ids = set()
        for service in (a, b):
            for value in TRICKY:
                for user in (0, -7, 2_147_483_647):
                    mine, headers = service.envelope("GetPropertyByRef", dto(value, user))
                    theirs, their_headers = service.zeep_envelope(
                        "GetPropertyByRef", dto(value, user), service.options
                    )
                    assert _no_id(mine) == _no_id(theirs), value
                    assert headers == their_headers
                    ids.add(re.search(rb"urn:uuid:[0-9a-f-]{36}", mine).group())  # type: ignore[union-attr]
        assert len(ids) == 2 * len(TRICKY) * 3  # a fresh message id every time
        kept = [v for k, v in soap._shapes._shapes.items() if k[1] == "GetPropertyByRef"]
        assert kept and all(v is not None for v in kept)  # the kept shape made them
        # the shape is the same for both councils; each request names its own address
        assert (
            b"<wsa:To>http://a.test/P.svc</wsa:To>" in a.envelope("GetPropertyByRef", dto("x"))[0]
        )
        assert (
            b"<wsa:To>https://b.test/x&amp;y</wsa:To>"
            in b.envelope("GetPropertyByRef", dto("x"))[0]
        )
        # what zeep refuses is still refused, by zeep
        with pytest.raises(ValueError, match="XML compatible"):
            a.envelope("GetPropertyByRef", dto("nul\x00byte"))
        with pytest.raises(TypeError):
            a.envelope("GetPropertyByRef", {"dto": {"NoSuchField": "x"}})
        # values that are not plain text or numbers are zeep's alone
        none_password = dto("x")
        none_password["dto"]["DirectUser"]["UserPassword"] = None
        mine, _ = a.envelope("GetPropertyByRef", none_password)
        assert _no_id(mine) == _no_id(
            a.zeep_envelope("GetPropertyByRef", none_password, a.options)[0]
        )


async def test_drs_requests_with_skips_booleans_and_lists_are_zeeps_own_bytes() -> None:
    """DRS's requests hold zeep's SkipValue (required elements left out), booleans and lists
    of booking codes: those are part of a kept shape (the strings and numbers in them have
    slots), and each request is still zeep's own rendering, byte for byte."""
    from zeep import xsd

    from adaptors.kirona_drs.wire import request_for

    doc = soap.parsed_wsdl(str(DRS_WSDLS / "drs-subset.wsdl"))
    async with soap.client_for(5.0) as http:
        service = soap.bounded_service(
            doc,
            http,
            endpoint="http://drs.test/DRS",
            system="DRS",
            timeout=5,
            max_reply_bytes=2**20,
        )

        def check(location: str, other_orders: bool, codes: list[str]) -> dict[str, Any]:
            return {
                "sessionId": "session-" + location,
                "canSelectOtherOrders": other_orders,
                "periodBegin": "2026-12-07T00:00:00+00:00",
                "periodEnd": "2026-12-14T00:00:00+00:00",
                "theOrder": {
                    "contract": "RESPONSIVE",
                    "locationID": location,
                    "primaryOrderNumber": "QUERY",
                    "priority": "N",
                    "userId": "REPAIRSGW",
                    "theBookingCodes": [
                        {
                            "bookingCodeSORCode": code,
                            "itemNumberWithinBooking": str(i + 1),
                            "primaryOrderNumber": "QUERY",
                            "quantity": "1",
                            "standardMinuteValue": "60",
                        }
                        for i, code in enumerate(codes)
                    ],
                },
            }

        bodies = [
            check(value, flag, codes)
            for value in TRICKY
            for flag in (False, True)
            for codes in (["N858111"], ["N858111", value])
        ]
        for body in bodies:
            request = request_for(service.client, "checkAvailability", body)
            assert xsd.SkipValue in _leaves(request)  # the schema's required elements left out
            mine, headers = service.envelope("checkAvailability", request)
            theirs, their_headers = service.zeep_envelope(
                "checkAvailability", request, service.options
            )
            assert _no_id(mine) == _no_id(theirs)
            assert headers == their_headers
        kept = [v for k, v in soap._shapes._shapes.items() if k[1] == "checkAvailability"]
        # 2 booleans x 2 lengths here (others' requests on this WSDL may have made more)
        assert len(kept) >= 4 and all(v is not None for v in kept)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]

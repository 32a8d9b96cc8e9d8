"""The server sends an answer's head and body in one write (gateway/http_server.py), and
every kind of answer still arrives whole: of known length, streamed, empty, to HEAD, over a
kept-alive connection and on one the client closes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.http_server import OneWriteH11Protocol, _HeadWithBody


class Recorded:
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n"


async def test_a_head_leaves_with_its_body_or_alone_on_the_next_turn() -> None:
    raw = Recorded()
    t = _HeadWithBody(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    t.write(b'{"a":1}')
    t.write(b"")  # h11's end of a body of known length
    assert raw.writes == [HEAD + b'{"a":1}', b""]  # one write for the answer
    await asyncio.sleep(0)
    assert raw.writes == [HEAD + b'{"a":1}', b""]  # nothing left to flush

    raw.writes.clear()
    big = b"x" * (1024 * 1024)
    t.writelines([HEAD, big])  # a large body is not copied onto its head: two writes, in order
    assert raw.writes == [HEAD, big]

    raw.writes.clear()
    t.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")  # a streamed answer
    assert raw.writes == []
    await asyncio.sleep(0)  # not held past the loop's next turn
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]

    raw.writes.clear()
    refusal = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    t.write(refusal)
    t.close()  # closing sends what is held first
    assert raw.writes == [refusal]
    assert raw.closed
    assert t.get_extra_info("sockname") == ("127.0.0.1", 8000)  # the rest is the transport's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _json(request: Request) -> Response:
    return JSONResponse({"echo": request.query_params.get("q", "")})


async def _stream(request: Request) -> Response:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        await asyncio.sleep(0.05)
        yield b"second"

    return StreamingResponse(parts(), media_type="text/plain")


async def _empty(request: Request) -> Response:
    return Response(status_code=204)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = Starlette(
        routes=[
            Route("/json", _json, methods=["GET", "HEAD"]),
            Route("/stream", _stream),
            Route("/empty", _empty, methods=["DELETE"]),
        ]
    )
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=OneWriteH11Protocol, log_level="warning"
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(1000):  # up to 10 s
        if srv.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task


async def test_every_kind_of_answer_arrives_whole(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        for n in range(5):  # one kept-alive connection, answer after answer
            r = await client.get("/json", params={"q": f"n{n}"})
            assert r.status_code == 200 and r.json() == {"echo": f"n{n}"}
        r = await client.head("/json")
        assert r.status_code == 200 and r.content == b""
        assert int(r.headers["content-length"]) == len(b'{"echo":""}')
        r = await client.get("/stream")
        assert r.status_code == 200 and r.text == "first,second"
        r = await client.delete("/empty")
        assert r.status_code == 204 and r.content == b""
        r = await client.get("/nowhere")
        assert r.status_code == 404
        r = await client.get("/json", headers={"Connection": "close"})
        assert r.status_code == 200 and r.headers.get("connection") == "close"
    # a request the server cannot parse is answered by uvicorn itself, and the socket closed
    reader, writer = await asyncio.open_connection(*server.removeprefix("http://").split(":"))
    writer.write(b"NOT HTTP\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 400 ")
    writer.close()

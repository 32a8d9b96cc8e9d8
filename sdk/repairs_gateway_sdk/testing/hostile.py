"""A hostile (or merely broken) vendor on loopback: an HTTP/1.1 server that answers every
request the way it is told, for tests of an adaptor's limits (reply caps, deadlines, error
pages). Standard library only; it runs in the test's own event loop::

    from repairs_gateway_sdk.testing.hostile import HostileServer

    async with HostileServer("big", size=50_000_000) as server:
        ... adaptor pointed at server.url ...
        server.mode = "slow"            # change behaviour between calls

or as a process (for benchmarks)::

    python -m repairs_gateway_sdk.testing.hostile --port N --mode big --size 50000000 \
        [--token] [--answer NEEDLE=FILE ...]

``CAP``, ``guarded`` and ``context`` are what such a test needs around the server.

Modes: ``big`` (a well-formed reply of ``size`` bytes, Content-Length given - or not, with
``chunked``), ``endless`` (a chunked body that never ends), ``gzip`` (a gzip bomb: ``size``
bytes once decompressed, a few tens of KB on the wire), ``slow`` (a slow-loris: headers, then
one byte every ``interval`` seconds, forever, chunked), ``empty`` (200 with no body), ``html``
(an IIS-style HTML error page with ``status``; ``html_bare`` the same page, well-formed,
without a DOCTYPE), ``ok`` (``body`` as given). ``shape`` is ``soap`` or ``json`` for the
generated bodies. ``answers`` maps a byte string found in the request (request line or body)
to a good reply, served instead - e.g. let a session or token call succeed (``TOKEN`` is an
OAuth 2 token reply) so the hostile reply hits the next call. ``GET /_ready`` always answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from repairs_gateway_sdk.adaptor import AdaptorContext
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendUnavailable

__all__ = [
    "CAP",
    "GUARD",
    "HTML_ERROR_PAGES",
    "TOKEN",
    "HostileServer",
    "Stats",
    "big_body",
    "body_chunks",
    "context",
    "guarded",
    "gzip_bomb",
    "main",
]

CAP = 1024 * 1024  # a test adaptor's max_reply_bytes: far below what the hostile server sends
GUARD = 30.0  # seconds before a test that would hang (an unbounded read) gives up
T = TypeVar("T")


async def guarded(call: Awaitable[T]) -> T:
    """``call``, stopped after ``GUARD`` seconds: only so that a test of an unbounded read
    fails instead of hanging; assert nothing about how long it took."""
    async with asyncio.timeout(GUARD):
        return await call


def context(tmp: Path, name: str, council: str = "hostile") -> AdaptorContext:
    """An adaptor context whose files live in ``tmp``."""
    return AdaptorContext(council=council, name=name, config_dir=tmp, data_dir=tmp)


SOAP_HEAD = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<GetPropertyListByPostCodeResponse xmlns="http://tempuri.org/">'
    b"<GetPropertyListByPostCodeResult><PropertyList>"
)
SOAP_ITEM = (
    b"<PropertySummary><PropertyReference>00012345</PropertyReference>"
    b"<AddressLine1>1 Hostile Street</AddressLine1><PostCodeValue>LN1 1AA</PostCodeValue>"
    b"</PropertySummary>"
)
SOAP_TAIL = (
    b"</PropertyList></GetPropertyListByPostCodeResult></GetPropertyListByPostCodeResponse>"
    b"</s:Body></s:Envelope>"
)
JSON_HEAD, JSON_ITEM, JSON_TAIL = b'{"items": [', b'{"reference": "x", "padding": "yyyy"},', b"{}]}"
SHAPES = {"soap": (SOAP_HEAD, SOAP_ITEM, SOAP_TAIL), "json": (JSON_HEAD, JSON_ITEM, JSON_TAIL)}
CONTENT_TYPES = {"soap": b"text/xml; charset=utf-8", "json": b"application/json"}

IIS_500 = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>500 - Internal server error.'
    b'</title></head><body><div id="header"><h1>Server Error</h1></div><div id="content">'
    b"<h2>500 - Internal server error.</h2><h3>There is a problem with the resource you are "
    b"looking for, and it cannot be displayed.</h3><br></div></body></html>"
)
BARE_HTML = (
    b"<html><head><title>Error</title></head><body><h1>Service Unavailable</h1></body></html>"
)

TOKEN = b'{"access_token": "hostile-token", "token_type": "Bearer", "expires_in": 3600}'
# What an adaptor must make of an HTML error page, by mode and status (parametrize a test with
# it): 5xx is an outage, 401/403 refused credentials, any other 4xx an outage too.
HTML_ERROR_PAGES: list[tuple[str, int, type[Exception]]] = [
    ("html", 500, BackendUnavailable),
    ("html_bare", 500, BackendUnavailable),
    ("html", 503, BackendUnavailable),
    ("html_bare", 502, BackendUnavailable),
    ("html", 401, BackendAuthFailed),
    ("html_bare", 403, BackendAuthFailed),
    ("html", 404, BackendUnavailable),
    ("html_bare", 400, BackendUnavailable),
]
REASONS = {200: b"OK", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found"}


def body_chunks(size: int, shape: str = "soap", chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A well-formed body of about ``size`` bytes, a chunk at a time."""
    head, item, tail = SHAPES[shape]
    per = max(1, chunk // len(item))
    block = item * per
    yield head
    sent = len(head) + len(tail)
    while sent + len(block) <= size:
        yield block
        sent += len(block)
    rest = max(0, (size - sent) // len(item))
    if rest:
        yield item * rest
    yield tail


def big_body(size: int, shape: str = "soap") -> bytes:
    return b"".join(body_chunks(size, shape))


_bombs: dict[tuple[int, str], bytes] = {}


def gzip_bomb(size: int, shape: str = "soap") -> bytes:
    """``size`` bytes of well-formed body, gzipped (a few tens of KB), built once per size."""
    key = (size, shape)
    if key not in _bombs:
        z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        out = [z.compress(c) for c in body_chunks(size, shape, chunk=1024 * 1024)]
        out.append(z.flush())
        _bombs[key] = b"".join(out)
    return _bombs[key]


@dataclass
class Stats:
    requests: int = 0
    disconnects: int = 0  # the client closed while a body was still being sent
    bytes_sent: int = 0
    paths: list[str] = field(default_factory=list)


class HostileServer:
    def __init__(
        self,
        mode: str = "ok",
        *,
        size: int = 50_000_000,
        interval: float = 0.2,
        status: int = 500,
        shape: str = "soap",
        body: bytes = b"",
        answers: dict[bytes, bytes] | None = None,
        port: int = 0,
        chunked: bool = False,
    ) -> None:
        self.mode, self.size, self.interval, self.status = mode, size, interval, status
        self.shape, self.body = shape, body
        self.answers = dict(answers or {})
        self.port = port
        self.chunked = chunked  # ``big`` without a Content-Length: only reading tells its size
        self.stats = Stats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._server.wait_closed()

    async def __aenter__(self) -> HostileServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_for_disconnect(self, count: int = 1, within: float = 10.0) -> bool:
        """True once ``count`` clients have hung up mid-body (polled, for at most ``within``)."""
        for _ in range(int(within / 0.05)):
            if self.stats.disconnects >= count:
                return True
            await asyncio.sleep(0.05)
        return self.stats.disconnects >= count

    # -- serving ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                self.stats.requests += 1
                self.stats.paths.append(lines[0].decode(errors="replace"))
                if not await self._answer(lines[0], body, writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.stats.bytes_sent += len(data)

    @staticmethod
    def _head(status: int, headers: dict[bytes, bytes]) -> bytes:
        reason = REASONS.get(status, b"Error")
        lines = [b"HTTP/1.1 %d %s" % (status, reason)]
        lines += [k + b": " + v for k, v in headers.items()]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _whole(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: bytes
    ) -> bool:
        head = {b"Content-Type": ctype, b"Content-Length": str(len(body)).encode()}
        await self._send(writer, self._head(status, head) + body)
        return True

    async def _answer(self, request_line: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if request_line.startswith(b"GET /_ready "):
            return await self._whole(writer, 200, b"ready", b"text/plain")
        for needle, reply in self.answers.items():
            if needle in request_line or needle in body:
                ctype = CONTENT_TYPES["json" if reply.lstrip().startswith(b"{") else "soap"]
                return await self._whole(writer, 200, reply, ctype)
        ctype = CONTENT_TYPES[self.shape]
        mode = self.mode
        if mode == "ok":
            return await self._whole(writer, 200, self.body, ctype)
        if mode == "empty":
            return await self._whole(writer, 200, b"", ctype)
        if mode in ("html", "html_bare"):
            page = IIS_500 if mode == "html" else BARE_HTML
            return await self._whole(writer, self.status, page, b"text/html")
        try:
            if mode == "big" and self.chunked:
                head = {b"Content-Type": ctype, b"Transfer-Encoding": b"chunked"}
                await self._send(writer, self._head(200, head))
                for chunk in body_chunks(self.size, self.shape):
                    await self._send(writer, b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await self._send(writer, b"0\r\n\r\n")
                return True
            if mode == "big":
                head = {b"Content-Type": ctype, b"Content-Length": str(self.size).encode()}
                await self._send(writer, self._head(200, head))
                sent = 0
                for chunk in body_chunks(self.size, self.shape):
                    await self._send(writer, chunk)
                    sent += len(chunk)
                if sent < self.size:  # pad to the length announced
                    await self._send(writer, b" " * (self.size - sent))
                return True
            if mode == "gzip":
                bomb = gzip_bomb(self.size, self.shape)
                head = {
                    b"Content-Type": ctype,
                    b"Content-Encoding": b"gzip",
                    b"Content-Length": str(len(bomb)).encode(),
                }
                await self._send(writer, self._head(200, head))
                for i in range(0, len(bomb), 16 * 1024):
                    await self._send(writer, bomb[i : i + 16 * 1024])
                return True
            if mode == "endless":
                head = {b"Content-Type": ctype, b"Transfer-Encoding": b"chunked"}
                await self._send(writer, self._head(200, head))
                head_b, item, _ = SHAPES[self.shape]
                block = item * (64 * 1024 // len(item))
                frame = b"%x\r\n%s\r\n" % (len(block), block)
                await self._send(writer, b"%x\r\n%s\r\n" % (len(head_b), head_b))
                while True:
                    await self._send(writer, frame)
            if mode == "slow":
                head = {b"Content-Type": ctype, b"Transfer-Encoding": b"chunked"}
                await self._send(writer, self._head(200, head))
                payload = big_body(4096, self.shape)
                i = 0
                while True:  # one byte per chunk: every read sees progress
                    await self._send(writer, b"1\r\n%s\r\n" % payload[i % len(payload) :][:1])
                    i += 1
                    await asyncio.sleep(self.interval)
        except ConnectionError:
            self.stats.disconnects += 1
            return False
        raise ValueError(f"unknown mode {mode!r}")


async def _main(args: argparse.Namespace, answers: dict[bytes, bytes]) -> None:
    server = HostileServer(
        args.mode,
        size=args.size,
        interval=args.interval,
        status=args.status,
        shape=args.shape,
        answers=answers,
        port=args.port,
        chunked=args.chunked,
    )
    await server.start()
    print(f"hostile server ({args.mode}) on {server.url}", flush=True)  # noqa: T201
    await asyncio.Event().wait()


def main(argv: list[str] | None = None, *, answers: dict[bytes, bytes] | None = None) -> None:
    """The server as a process (``answers``: canned replies a wrapper adds to ``--answer``)."""
    p = argparse.ArgumentParser(prog="python -m repairs_gateway_sdk.testing.hostile")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="big")
    p.add_argument("--size", type=int, default=50_000_000)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--status", type=int, default=500)
    p.add_argument("--shape", choices=sorted(SHAPES), default="soap")
    p.add_argument("--chunked", action="store_true", help="big: no Content-Length")
    p.add_argument("--token", action="store_true", help="answer an OAuth token request properly")
    p.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="NEEDLE=FILE",
        help="a request containing NEEDLE is answered 200 with FILE's bytes (repeatable)",
    )
    args = p.parse_args(argv)
    answers = dict(answers or {})
    if args.token:
        answers[b"/connect/token"] = TOKEN
    for item in args.answer:
        needle, _, path = item.partition("=")
        answers[needle.encode()] = Path(path).read_bytes()
    asyncio.run(_main(args, answers))


if __name__ == "__main__":
    main()

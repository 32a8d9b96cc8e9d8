"""Bounded vendor replies: a cap on the (decompressed) bytes read, a total deadline per
exchange, and big replies parsed off the event loop.

A hostile or broken vendor must never take down more than its own request. Every adaptor that
talks HTTP reads its replies through ``request``:

- the body is read as a stream and refused as soon as it passes ``max_bytes``
  (:class:`ReplyTooLarge`, a ``BackendUnavailable``); the connection is then closed, not reused.
  The cap applies to *decompressed* bytes: gzip and deflate are inflated here, incrementally and
  never more than the bytes still allowed, so a small compressed bomb cannot expand in memory;
- ``deadline`` bounds a whole exchange - connect, send, reply transfer and parsing - which
  httpx's own timeouts (per read) do not: a server trickling one byte a second never trips
  them. It raises :class:`DeadlineExceeded`, an ``httpx.TimeoutException``, so callers keep
  treating it as a timeout (reads retried, a write's outcome unknown);
- ``off_loop`` runs CPU-heavy parsing of big replies in a small, bounded pool of threads
  (``PARSE_THREADS``), so one council's big reply does not stall every other request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import httpcore
import httpx

from repairs_gateway_sdk.errors import BackendUnavailable

T = TypeVar("T")

MiB = 1024 * 1024
# Replies smaller than this are parsed on the event loop (a thread hop would cost more).
OFF_LOOP_BYTES = 64 * 1024
PARSE_THREADS = 2
# What the adaptors' clients accept: encodings inflated here with a bound (no br/zstd, whose
# decoders in httpx inflate a whole chunk at once).
ACCEPT_ENCODING = "gzip, deflate"


class ReplyTooLarge(BackendUnavailable):
    """The vendor sent more than the adaptor's ``max_reply_bytes``: the backend's fault (it
    counts against the circuit breaker), never retried as it would only come back as large."""

    def __init__(self, system: str, limit: int) -> None:
        super().__init__(f"{system} sent a reply larger than {limit} bytes", retry_after=60)
        self.limit = limit


class DeadlineExceeded(httpx.TimeoutException):
    """An exchange (connect, send, transfer, parse) ran past its total deadline."""


class deadline:  # noqa: N801 - used as a function: ``async with deadline(s, what):``
    """Bound the block to ``seconds`` in all; past it, :class:`DeadlineExceeded`. (A class
    rather than an ``asynccontextmanager``: it is entered on every vendor exchange.)"""

    __slots__ = ("_seconds", "_what", "_timeout")

    def __init__(self, seconds: float, what: str) -> None:
        self._seconds = seconds
        self._what = what
        self._timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            raise DeadlineExceeded(f"{self._what} took longer than {self._seconds:g} s") from None


_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="reply-parse")
    return _pool


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the reply-parsing threads (at most ``PARSE_THREADS`` at once)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), partial(fn, *args))


async def parse(body: bytes, fn: Callable[[], T]) -> T:
    """``fn()`` on the loop for a small ``body``, off it for a big one."""
    if len(body) < OFF_LOOP_BYTES:
        return fn()
    return await off_loop(fn)


class Reply:
    """A vendor reply read within its limits: status, headers and the decoded body."""

    __slots__ = ("status_code", "headers", "content", "_json")

    def __init__(self, status_code: int, headers: httpx.Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self._json: tuple[Any, ValueError | None] | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not), parsed once."""
        if self._json is None:
            self._json = _json_of(self.content)
        value, error = self._json
        if error is not None:
            raise error
        return value

    async def load_json(self) -> None:
        """Parse a big JSON body now, off the event loop, so ``json()`` costs nothing later."""
        if self._json is None and len(self.content) >= OFF_LOOP_BYTES:
            self._json = await off_loop(_json_of, self.content)


def _json_of(content: bytes) -> tuple[Any, ValueError | None]:
    try:
        return json.loads(content), None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return None, exc


class _Inflater:
    """Incremental gzip/deflate decoding that never produces more than it is allowed."""

    def __init__(self, encoding: str) -> None:
        self.raw_fallback = encoding == "deflate"  # RFC says zlib; some servers send raw
        # 32 + MAX_WBITS: a gzip or zlib header, detected
        wbits = zlib.MAX_WBITS | 32 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self.d = zlib.decompressobj(wbits)
        self.started = False

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Decoded bytes of ``data``: stops (leaving input unread) once ``room`` + 1 bytes came
        out, which is enough to know the cap is passed."""
        while data and room >= 0 and not self.d.eof:
            try:
                out = self.d.decompress(data, room + 1)
            except zlib.error:
                if self.raw_fallback and not self.started:
                    self.raw_fallback = False
                    self.d = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise httpx.DecodingError("the reply's compressed body is corrupt") from None
            self.started = True
            if not out and self.d.unconsumed_tail == data:
                raise httpx.DecodingError("the reply's compressed body does not decode")
            data = self.d.unconsumed_tail
            if out:
                room -= len(out)
                yield out

    def finish(self) -> bytes:
        return self.d.flush()


class _Body:
    """Collects a decoded body up to ``max_bytes``."""

    def __init__(self, response: httpx.Response, max_bytes: int, system: str) -> None:
        self.max_bytes, self.system = max_bytes, system
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        self.raw = encoding in ("", "identity", "gzip", "x-gzip", "deflate")
        self.inflater = _Inflater(encoding) if encoding not in ("", "identity") else None
        if self.raw and self.inflater is None:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ReplyTooLarge(system, max_bytes)
        self.parts: list[bytes] = []
        self.size = 0

    def _add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise ReplyTooLarge(self.system, self.max_bytes)
        self.parts.append(piece)

    def add(self, chunk: bytes) -> None:
        if self.inflater is None or not self.raw:
            self._add(chunk)
            return
        for piece in self.inflater.feed(chunk, self.max_bytes - self.size):
            self._add(piece)

    def done(self) -> bytes:
        if self.inflater is not None and self.raw:
            self._add(self.inflater.finish())
        return b"".join(self.parts)


async def read_body(response: httpx.Response, max_bytes: int, system: str) -> bytes:
    """The decoded body of a streamed ``response``, at most ``max_bytes`` of it. gzip and
    deflate are inflated here with that bound; anything else httpx decodes itself (the
    adaptors' clients do not ask for other encodings) and the cap applies to its output."""
    body = _Body(response, max_bytes, system)
    if response.is_stream_consumed:  # read already (an event hook): only the cap is left
        body.raw = False
    chunks = response.aiter_raw() if body.raw else response.aiter_bytes()
    async for chunk in chunks:
        body.add(chunk)
    return body.done()


def read_body_sync(
    response: httpx.Response, max_bytes: int, system: str, check: Callable[[], object]
) -> bytes:
    """``read_body`` for a sync client; ``check()`` runs as each chunk arrives (a deadline)."""
    body = _Body(response, max_bytes, system)
    check()
    for chunk in response.iter_raw() if body.raw else response.iter_bytes():
        check()
        body.add(chunk)
    return body.done()


async def request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    system: str,
    **kwargs: Any,
) -> Reply:
    """Send a request and read its reply within ``max_bytes`` (wrap it in ``deadline``).

    A reply over the cap raises :class:`ReplyTooLarge`; leaving the stream unread closes the
    connection rather than returning it to the pool."""
    # ``http.stream(...)`` without its context manager: the same request and reply
    sending = {k: kwargs.pop(k) for k in ("auth", "follow_redirects") if k in kwargs}
    response = await http.send(http.build_request(method, url, **kwargs), stream=True, **sending)
    try:
        body = await read_body(response, max_bytes, system)
    finally:
        await response.aclose()
    return Reply(response.status_code, response.headers, body)


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context for every HTTP client in the process. Building one reads the whole CA
    store (about 45 ms and a MiB of memory each): a platform with hundreds of councils would
    otherwise spend minutes and gigabytes on identical copies. Pass it as ``verify=``."""
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()


# -- connection pools shared by every adaptor of a process -------------------------------------
# One pool per event loop, origin (scheme, host, port) and TLS context. A pool's connections
# carry nothing of the council that opened them (each request brings its own headers and
# body; clients keep their own cookies), so councils on one backend host reuse each other's
# open connections instead of each paying its own TCP (and TLS) handshakes.
KEEPALIVE_PER_ORIGIN = 32  # idle connections kept per origin (httpcore scans them per request)
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Pool]] = (
    weakref.WeakKeyDictionary()
)


HELD_BYTES = 64 * 1024  # a request's bytes held for one send, at most


class _OneSend(httpcore.AsyncNetworkStream):
    """A connection that sends a request in one piece: httpcore writes an HTTP/1.1 request's
    head and its body apart (two sends, so two packets with TCP_NODELAY, and two wake-ups of
    the server for one small request); here they are held, up to ``HELD_BYTES``, until the
    reply is read (or more would be held), then sent together. Reading, TLS and closing are
    the wrapped stream's."""

    __slots__ = ("_stream", "_held", "_size", "_timeout")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._held: list[bytes] = []
        self._size = 0
        self._timeout: float | None = None

    async def _send_held(self) -> None:
        held, self._held, self._size = self._held, [], 0
        await self._stream.write(held[0] if len(held) == 1 else b"".join(held), self._timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._held and self._size + len(buffer) > HELD_BYTES:
            await self._send_held()
        if len(buffer) >= HELD_BYTES:
            await self._stream.write(buffer, timeout)
            return
        self._held.append(buffer)
        self._size += len(buffer)
        self._timeout = timeout

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            await self._send_held()
        return await self._stream.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held, self._size = [], 0
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._held:
            await self._send_held()
        return _OneSend(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _OneSendBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own network backend, its connections wrapped in ``_OneSend``."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _OneSend(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _OneSend(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _one_send_transport(verify: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's transport for a shared pool, on connections that send a request in one piece
    (``_OneSend``). Its connection pool is built here with httpcore's public arguments (the
    same limits as httpx would pass); should httpx ever hold something else there, its own
    pool is kept."""
    transport = httpx.AsyncHTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE_PER_ORIGIN),
    )
    if type(getattr(transport, "_pool", None)) is httpcore.AsyncConnectionPool:
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=None,
            max_keepalive_connections=KEEPALIVE_PER_ORIGIN,
            keepalive_expiry=5.0,
            network_backend=_OneSendBackend(),
        )
    return transport


class _Pool:
    __slots__ = ("transport", "users")

    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.transport = transport
        self.users = 0


class _Released(httpx.AsyncByteStream):
    """A reply's body that gives its client's connection slot back when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class SharedPools(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncClient``'s transport onto the process's shared connection pools.

    Each client keeps what is its own: headers, cookies, timeouts (its ``AsyncClient``) and
    its own cap on connections in use at once (``max_connections``: one council's burst
    cannot take a host's every connection from the others, as with a pool of its own). Only
    open connections are shared, per event loop, origin and TLS context. Closing the client
    releases its share; a pool closes with its last client."""

    def __init__(
        self, *, max_connections: int | None = 100, verify: ssl.SSLContext | None = None
    ) -> None:
        self.verify = verify if verify is not None else shared_tls()
        self.max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        # the pools this client holds a share of, by event loop and origin
        self._used: dict[tuple[Any, ...], _Pool] = {}
        self._closed = False

    def _pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        if self._closed:
            raise RuntimeError("the client's transport is closed")
        loop = asyncio.get_running_loop()
        key = (url.scheme, url.host, url.port, id(self.verify))
        mine = self._used.get((loop, *key))
        if mine is not None:
            return mine.transport
        per_loop = _pools.get(loop)
        if per_loop is None:
            per_loop = _pools[loop] = {}
        pool = per_loop.get(key)
        if pool is None:
            pool = per_loop[key] = _Pool(_one_send_transport(self.verify))
        pool.users += 1
        self._used[(loop, *key)] = pool
        return pool.transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._pool(request.url)
        if self.max_connections is None:
            return await transport.handle_async_request(request)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        slots = self._slots
        if slots.locked():  # all in use: wait, within the pool timeout
            wait = (request.extensions.get("timeout") or {}).get("pool")
            try:
                async with asyncio.timeout(wait):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection of this client was free in time") from None
        else:
            await slots.acquire()  # one is free: taken at once
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            slots.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, slots.release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        used, self._used = self._used, {}
        for (loop, *key), pool in used.items():
            pool.users -= 1
            if pool.users > 0:
                continue
            per_loop = _pools.get(loop)
            if per_loop is not None and per_loop.get(tuple(key)) is pool:
                del per_loop[tuple(key)]
            if loop is asyncio.get_running_loop():  # else its loop is gone, sockets and all
                await pool.transport.aclose()


def pooled_client(
    *, max_connections: int | None = 100, verify: ssl.SSLContext | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` of its own (headers, cookies, timeouts) on the shared
    connection pools (``SharedPools``)."""
    pools = SharedPools(max_connections=max_connections, verify=verify)
    # verify: the TLS context of any proxy transport httpx mounts from the environment
    return httpx.AsyncClient(transport=pools, verify=pools.verify, **kwargs)

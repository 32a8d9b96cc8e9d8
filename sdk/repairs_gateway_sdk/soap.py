"""Shared SOAP toolkit for adaptors built on zeep (Civica UH, Kirona DRS, ...).

- ``hardened_settings``: DTDs, entities and external references forbidden; no huge trees;
  lenient on extra/missing elements in replies (``strict=False``).
- ``load_wsdl`` (``parsed_wsdl`` in a thread) + ``bounded_service``: the one way to call a
  service. The WSDL is parsed once per process and location (a ``zeep.wsdl.Document``,
  hardened), fetched within a total deadline and a byte cap (a WSDL trickling one byte a second
  fails at the deadline instead of holding start-up). Requests are built with one zeep client
  per document shared by every adaptor on it (``shared_client``: no WS-Security, plugins or
  transport that could carry one council's state into another's requests) and sent through
  each adaptor's *own* ``httpx.AsyncClient`` (``client_for``, which it creates in its event loop
  and closes) on the process's shared connection pools (``replies.SharedPools``), at the
  configured endpoint or the WSDL's address. ``bind_client`` still gives a zeep client and
  async service proxy of one's own.
- ``BoundedService``: how operations are called. The reply is read within ``max_reply_bytes``
  (decompressed) and the whole exchange - connect, send, transfer, parse - within one deadline
  (``adaptors/replies.py``); big replies are parsed off the event loop.
- ``soap_envelope``: every reply must be a SOAP envelope. An empty or non-SOAP body (an HTML
  error page from IIS or a proxy, a 200 with nothing in it) is never an answer: 401/403 ->
  ``BackendAuthFailed``, anything else -> ``BackendUnavailable`` (a 4xx page comes from the web
  server or a proxy in front of the service, not from the service judging the request).
- ``strict_parse``: replies are read strictly. zeep's lenient mode (``strict=False``) also makes
  lxml *recover* broken XML, so a truncated reply would silently become a partial or empty
  answer. Adaptors that read replies themselves (Civica UH) parse them with ``strict_parse``;
  clients from ``bind_client`` check every reply with it before zeep reads it (Kirona DRS). A
  malformed reply is an error (-> ``BackendUnavailable``), a DTD is refused.
- ``map_soap_error``: zeep/httpx failures -> the gateway error taxonomy.
- ``retry_reads``: the retry policy for reads only - bounded, jittered, on connection errors and
  timeouts only (never on faults: those are answers).

See docs/decisions/0004-zeep-settings.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import zeep
import zeep.exceptions as zx
from lxml import etree
from zeep import xsd
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsdl import Document
from zeep.wsdl.utils import etree_to_string

from repairs_gateway_sdk import replies
from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendCannotAccept,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
)
from repairs_gateway_sdk.replies import DeadlineExceeded, MiB, Reply

T = TypeVar("T")

HOSTILE = (zx.DTDForbidden, zx.EntitiesForbidden, zx.ExternalReferenceForbidden)


def hardened_settings() -> zeep.Settings:
    return zeep.Settings(
        strict=False,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
        force_https=False,
    )


def wsdl_location(wsdl: str, base: Path | None = None) -> str:
    if wsdl.startswith(("http://", "https://", "file://")):
        return wsdl
    p = Path(wsdl)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve())


def map_soap_error(exc: BaseException, system: str) -> GatewayError:
    """Translate a transport/protocol failure into the gateway's taxonomy."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ValueError) and "XML compatible" in str(exc):
        # lxml refusing a control character or NUL while the request is built: this request
        # can never be sent, whatever the backend's state
        return BackendCannotAccept(f"{system} cannot accept the characters in this request")
    if isinstance(exc, HOSTILE):
        return BackendRejected(f"{system} sent a forbidden XML construct (DTD/entity); refused")
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(f"{system} did not answer in time", retry_after=30)
    if isinstance(exc, httpx.TransportError):
        return BackendUnavailable(f"{system} could not be reached", retry_after=30)
    if isinstance(exc, zx.TransportError):
        if exc.status_code in (401, 403):
            return BackendAuthFailed(f"{system} refused the gateway's credentials")
        return BackendUnavailable(f"{system} answered HTTP {exc.status_code}", retry_after=30)
    if isinstance(exc, zx.Fault):
        text = (exc.message or "").lower()
        if any(w in text for w in ("authenticat", "password", "login", "unauthori")):
            return BackendAuthFailed(f"{system} refused the gateway's credentials")
        code = str(getattr(exc, "code", "") or "")
        if code.endswith(("Server", "Receiver")):
            # the backend's own failure (SOAP 1.1 Server / 1.2 Receiver): worth retrying
            return BackendUnavailable(f"{system} failed internally", retry_after=30)
        # the fault text is the vendor's and can echo what was sent (names, phones): it
        # classifies the error above but is never passed on
        return BackendRejected(f"{system} refused the request ({code or 'fault'})")
    if isinstance(exc, zx.XMLSyntaxError | etree.XMLSyntaxError | zx.XMLParseError):
        return BackendUnavailable(f"{system} sent a malformed reply", retry_after=30)
    if isinstance(exc, zx.ValidationError):
        return BackendRejected(f"{system} request could not be built from its WSDL")
    if isinstance(exc, zx.Error):
        return BackendUnavailable(f"{system} reply could not be understood", retry_after=30)
    return BackendUnavailable(f"{system} failed ({type(exc).__name__})", retry_after=30)


RETRYABLE = (httpx.TimeoutException, httpx.TransportError)


async def retry_reads(
    call: Callable[[], Awaitable[T]], *, attempts: int = 3, max_wait: float = 2.0
) -> T:
    """Run a read with bounded, jittered retries on connection errors and timeouts only: up
    to ``attempts`` in all, waiting a random 0..min(max_wait, 0.1 * 2**(n-1)) s after the
    n-th (tenacity's ``wait_random_exponential(multiplier=0.1)``, without its per-call cost,
    which was a tenth of a millisecond on every read)."""
    attempt = 1
    while True:
        try:
            return await call()
        except RETRYABLE:
            if attempt >= attempts:
                raise
        await asyncio.sleep(random.uniform(0, min(max_wait, 0.1 * 2 ** (attempt - 1))))
        attempt += 1


# -- WSDL documents and clients ----------------------------------------------------------------
_documents: dict[str, Document] = {}
_loading: dict[str, threading.Lock] = {}
_lock = threading.Lock()


DEFAULT_MAX_WSDL_BYTES = 10 * MiB


class BoundedLoader(zeep.Transport):
    """zeep's document loader with a total deadline for every document of one WSDL (imports
    included) and a byte cap per document. Runs in a thread: the deadline is checked as each
    chunk arrives and every read times out by it, so a server trickling bytes is cut off."""

    def __init__(self, *, timeout: float, max_bytes: int) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)
        self.timeout = timeout
        self.expires = time.monotonic() + timeout
        self.max_bytes = max_bytes

    def _left(self, url: str) -> float:
        left = self.expires - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"loading the WSDL took longer than {self.timeout:g} s")
        return left

    def _load_remote_data(self, url: str) -> bytes:
        if not url.startswith(("http://", "https://")):
            return bytes(super()._load_remote_data(url))  # file:// - the council's own files
        left = self._left(url)
        headers = {"Accept-Encoding": replies.ACCEPT_ENCODING}
        with httpx.Client(
            timeout=httpx.Timeout(left, connect=min(left, 5.0)), verify=replies.shared_tls()
        ) as http:
            with http.stream("GET", url, headers=headers) as response:
                body = replies.read_body_sync(
                    response, self.max_bytes, "the WSDL server", lambda: self._left(url)
                )
                if response.status_code >= 400:
                    raise zx.TransportError(status_code=response.status_code)
                return body


def parsed_wsdl(
    location: str, *, timeout: float = 30.0, max_bytes: int = DEFAULT_MAX_WSDL_BYTES
) -> Document:
    """The WSDL at ``location`` (see ``wsdl_location``), parsed once per process with
    ``hardened_settings``, fetched within ``timeout`` seconds in all and ``max_bytes`` per
    document. Blocking (it may fetch the WSDL over HTTP): in async code, use ``load_wsdl``.
    Different locations load in parallel."""
    with _lock:
        doc = _documents.get(location)
        if doc is not None:
            return doc
        loading = _loading.setdefault(location, threading.Lock())
    if not loading.acquire(timeout=timeout):  # another thread is loading it, slowly
        raise DeadlineExceeded(f"loading the WSDL took longer than {timeout:g} s")
    try:
        doc = _documents.get(location)
        if doc is None:
            loader = BoundedLoader(timeout=timeout, max_bytes=max_bytes)
            doc = Document(location, loader, settings=hardened_settings())  # type: ignore[arg-type]
            with _lock:
                _documents[location] = doc
        return doc
    finally:
        loading.release()


def parsed(location: str) -> bool:
    """Whether the WSDL at ``location`` is parsed already (``load_wsdl`` answers at once)."""
    return location in _documents


async def load_wsdl(
    location: str, *, timeout: float, max_bytes: int = DEFAULT_MAX_WSDL_BYTES
) -> Document:
    """``parsed_wsdl`` in a thread, never waited on for longer than ``timeout`` (plus a second
    for zeep to parse what it fetched): a start-up cannot hang on a slow WSDL server. A
    document parsed already is answered at once (no thread)."""
    doc = _documents.get(location)
    if doc is not None:
        return doc
    async with replies.deadline(timeout + 1.0, "loading the WSDL"):
        return await asyncio.to_thread(parsed_wsdl, location, timeout=timeout, max_bytes=max_bytes)


def _closed_client() -> httpx.Client:
    client = httpx.Client(verify=replies.shared_tls())
    client.close()
    return client


# zeep wants a client for fetching WSDL parts; a bound client has its document already.
_NO_FETCHING = _closed_client()


class StrictAsyncTransport(AsyncTransport):
    """zeep's async transport on the adaptor's own ``httpx.AsyncClient``. Operations are not
    sent through it (``BoundedService`` sends them, with limits); should anything call zeep's
    own send path, the reply is still read within a cap and checked strictly."""

    max_reply_bytes = 10 * MiB

    async def post(self, address: str, message: Any, headers: Any) -> httpx.Response:
        reply = await replies.request(
            self.client,
            "POST",
            address,
            content=message,
            headers=headers,
            max_bytes=self.max_reply_bytes,
            system="the SOAP service",
        )
        soap_envelope(reply, "the SOAP service")
        return httpx.Response(reply.status_code, content=reply.content)


def bind_client(
    document: Document, http: httpx.AsyncClient, *, endpoint: str | None = None
) -> tuple[zeep.AsyncClient, AsyncServiceProxy]:
    """``(client, service)`` on a parsed ``document`` that send through ``http`` - the caller's
    own client, so each adaptor instance owns (and closes) its connections and event loop.

    The service is async and calls ``endpoint`` when given (with the document's first binding),
    else the address the WSDL declares. (``bounded_service`` does not need a client of its
    own: it shares one per document, see ``shared_binding``.)
    """
    transport = StrictAsyncTransport(client=http, wsdl_client=_NO_FETCHING)
    client = zeep.AsyncClient(document, transport=transport, settings=hardened_settings())
    if endpoint:
        # zeep's AsyncClient.create_service returns a *sync* proxy (zeep 4.3); build the async one.
        binding = next(iter(document.bindings.values()))
        return client, AsyncServiceProxy(client, binding, address=endpoint)
    service = client.bind()
    if service is None:
        raise zx.Error("the WSDL declares no service: configure an endpoint")
    return client, service


class NeverSends(AsyncTransport):
    """The transport of a zeep client shared by every adaptor on one WSDL: it never sends
    (``BoundedService`` sends, on each adaptor's own HTTP client) and never fetches."""

    def __init__(self) -> None:  # no clients of its own (zeep's would make two)
        self._close_session = False
        self.cache = None
        self.wsdl_client = _NO_FETCHING
        self.client = None
        self.logger = logging.getLogger(__name__)

    async def post(self, address: str, message: Any, headers: Any) -> httpx.Response:
        raise RuntimeError("a shared SOAP binding never sends: use BoundedService")

    async def aclose(self) -> None:
        return None


# One zeep client per parsed document, shared by every adaptor (every council) on that WSDL:
# building requests from the WSDL needs the document, its bindings and hardened settings, which
# are the same for all of them. What is a council's own - its endpoint, credentials (in the
# request body), HTTP client and connections - is never in it: it has no WS-Security, no
# plugins, no extra HTTP headers and a transport that cannot send.
_shared: dict[int, tuple[Document, zeep.AsyncClient]] = {}


def shared_client(document: Document) -> zeep.AsyncClient:
    """The process's zeep client for ``document`` (see above); builds requests, never sends."""
    hit = _shared.get(id(document))
    if hit is not None and hit[0] is document:
        return hit[1]
    with _lock:
        hit = _shared.get(id(document))
        if hit is None or hit[0] is not document:
            client = zeep.AsyncClient(
                document, transport=NeverSends(), settings=hardened_settings()
            )
            hit = _shared[id(document)] = (document, client)
    return hit[1]


def shared_binding(document: Document, endpoint: str | None) -> tuple[zeep.AsyncClient, Any, str]:
    """``(client, binding, address)``: the shared client of ``document``, the binding to call
    and the address to send to (``endpoint``, or the address the WSDL declares)."""
    client = shared_client(document)
    if endpoint:
        return client, next(iter(document.bindings.values())), endpoint
    service = client.bind()
    if service is None:
        raise zx.Error("the WSDL declares no service: configure an endpoint")
    return client, service._binding, service._binding_options["address"]


# -- requests from kept shapes -----------------------------------------------------------------
_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MESSAGE_ID = re.compile(rb">urn:uuid:[0-9a-f-]{36}<")
_INT_MARK = 1_900_000_000  # int32, as xsd:int fields need
_ADDRESS_MARK = "zqxADDRESSqz"
_UNSEEN = object()
_SKIP = "skip"  # zeep's SkipValue in a shape


class _Shape:
    """zeep's rendering of one request shape (an operation and the names and types of its
    values, never the values), with a slot for each value, the address and the message id."""

    __slots__ = ("binding", "parts", "headers")

    def __init__(self, binding: Any, parts: list[bytes | int], headers: dict[str, str]) -> None:
        self.binding = binding
        self.parts = parts  # bytes, or: i >= 0 the i-th value, -1 the address, -2 a message id
        self.headers = headers


class RequestShapes:
    """Requests rendered from kept shapes: zeep builds (and checks against the WSDL) each
    request shape once per process - an operation with the same names and types of values -
    with marks in place of the values; later requests of that shape are that rendering with
    their own values escaped in (as lxml escapes text), their own address and a fresh
    WS-Addressing message id. A shape holds no council's values: every council on one WSDL
    uses the same ones. Only plain ``str`` and ``int`` values have slots, and strings that
    XML can carry; booleans and zeep's ``SkipValue`` (an element left out) are part of the
    shape, in dicts and lists; anything else (None, zeep objects, control characters) is
    built by zeep, as is a shape whose rendering is not one mark per value. The first request
    of each shape is checked against zeep's own rendering of it."""

    MAX_SHAPES = 4096

    def __init__(self) -> None:
        self._shapes: dict[tuple[Any, ...], _Shape | None] = {}

    @staticmethod
    def _flatten(value: Any, values: list[Any]) -> Any:
        """The shape of ``value`` (nested dicts and lists of str/int, booleans and zeep's
        ``SkipValue``), its str/int leaves appended to ``values``; None when it is not such a
        value. A boolean or a skip is part of the shape itself (it has no slot)."""
        if type(value) is dict:
            pairs = []
            for k, v in value.items():
                inner = RequestShapes._flatten(v, values)
                if inner is None:
                    return None
                pairs.append((k, inner))
            return ("dict", tuple(pairs))
        if type(value) is str:
            if _XML_UNSAFE.search(value):
                return None
            values.append(value)
            return str
        if type(value) is int:
            values.append(value)
            return int
        if type(value) is bool:
            return ("bool", value)
        if value is xsd.SkipValue:
            return _SKIP
        if type(value) is list:
            items = []
            for v in value:
                inner = RequestShapes._flatten(v, values)
                if inner is None:
                    return None
                items.append(inner)
            return ("list", tuple(items))
        return None

    @staticmethod
    def _marks(shape: Any, counter: list[int]) -> Any:
        if shape is str or shape is int:
            i = counter[0]
            counter[0] += 1
            return f"zqx{i}qz" if shape is str else _INT_MARK + i
        if shape is _SKIP:
            return xsd.SkipValue
        kind, inner = shape
        if kind == "dict":
            return {k: RequestShapes._marks(v, counter) for k, v in inner}
        if kind == "list":
            return [RequestShapes._marks(v, counter) for v in inner]
        return inner  # a boolean, as given

    def render(
        self, service: BoundedService, operation: str, kwargs: dict[str, Any]
    ) -> tuple[bytes, dict[str, str]] | None:
        values: list[Any] = []
        shape = self._flatten(kwargs, values)
        if shape is None:
            return None
        key = (id(service.binding), operation, shape)
        kept = self._shapes.get(key, _UNSEEN)
        if kept is _UNSEEN:  # this once, zeep's own rendering, compared with the shape's
            return self._learn(service, operation, kwargs, shape, values)
        if not isinstance(kept, _Shape) or kept.binding is not service.binding:
            return None
        return self._fill(kept, values, service.address), dict(kept.headers)

    @staticmethod
    def _fill(kept: _Shape, values: list[Any], address: str) -> bytes:
        out = []
        for part in kept.parts:
            if isinstance(part, bytes):
                out.append(part)
            elif part >= 0:
                value = values[part]
                out.append(_escape(value) if type(value) is str else str(value).encode())
            elif part == -1:
                out.append(_escape(address))
            else:
                out.append(f"urn:uuid:{uuid.uuid4()}".encode())
        return b"".join(out)

    def _learn(
        self,
        service: BoundedService,
        operation: str,
        kwargs: dict[str, Any],
        shape: Any,
        values: list[Any],
    ) -> tuple[bytes, dict[str, str]]:
        """zeep's request for ``kwargs``; the shape is kept if zeep's rendering of it with
        marks, filled with these values, is the same bytes (bar the message id)."""
        theirs = service.zeep_envelope(operation, kwargs, service.options)  # raises as zeep does
        if len(self._shapes) >= self.MAX_SHAPES:
            self._shapes.clear()
        kept: _Shape | None = None
        try:
            marked = self._marks(shape, [0])
            xml, headers = service.zeep_envelope(operation, marked, {"address": _ADDRESS_MARK})
            kept = self._split(service.binding, xml, headers, len(values))
            if kept is not None:
                mine = self._fill(kept, values, service.address)
                if _MESSAGE_ID.sub(b"><", mine) != _MESSAGE_ID.sub(b"><", theirs[0]):
                    kept = None
        except Exception:  # noqa: BLE001 - zeep refuses the marks: zeep builds each request
            kept = None
        self._shapes[(id(service.binding), operation, shape)] = kept
        return theirs

    @staticmethod
    def _split(binding: Any, xml: bytes, headers: dict[str, str], count: int) -> _Shape | None:
        marks = [rf">(zqx{i}qz|{_INT_MARK + i})<".encode() for i in range(count)]
        found: list[tuple[int, int, int]] = []  # start, end, slot
        for i, mark in enumerate(marks):
            hits = list(re.finditer(mark, xml))
            if len(hits) != 1:
                return None
            found.append((hits[0].start() + 1, hits[0].end() - 1, i))
        address = list(re.finditer(rf">{_ADDRESS_MARK}<".encode(), xml))
        ids = list(_MESSAGE_ID.finditer(xml))
        if (
            len(address) > 1
            or len(ids) > 1
            or _ADDRESS_MARK.encode() in xml.replace(f">{_ADDRESS_MARK}<".encode(), b"")
        ):
            return None
        found += [(m.start() + 1, m.end() - 1, -1) for m in address]
        found += [(m.start() + 1, m.end() - 1, -2) for m in ids]
        found.sort()
        parts: list[bytes | int] = []
        at = 0
        for start, end, slot in found:
            parts.append(xml[at:start])
            parts.append(slot)
            at = end
        parts.append(xml[at:])
        return _Shape(binding, parts, dict(headers))


def _escape(text: str) -> bytes:
    """Text as lxml writes it in an element (UTF-8)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
        .encode()
    )


_shapes = RequestShapes()


XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def plain_tree(el: etree._Element) -> Any:
    """An element as plain data: a leaf -> its text (``xsi:nil`` -> None), others -> a dict
    by local name (a name repeated -> a list). Comments and processing instructions are
    skipped; attributes other than ``xsi:nil`` are not read."""
    out: dict[str, Any] | None = None
    repeated: set[str] | None = None
    for c in el:
        tag = c.tag
        if type(tag) is not str:  # a comment or processing instruction
            continue
        name = tag[tag.rfind("}") + 1 :]  # the local name
        value = plain_tree(c)
        if out is None:
            out = {name: value}
        elif name in out:
            if repeated is None:
                repeated = set()
            if name not in repeated:
                out[name] = [out[name]]
                repeated.add(name)
            out[name].append(value)
        else:
            out[name] = value
    if out is None:
        return None if el.get(XSI_NIL) == "true" else el.text
    return out


class BoundedService:
    """Calls the operations of one SOAP service with a bounded reply and a total deadline.

    zeep builds (and checks) each request from the WSDL; the reply is read within
    ``max_reply_bytes`` (decompressed), parsed once, strictly (``soap_envelope``), and mapped by
    zeep - off the event loop when it is big - all within ``timeout`` seconds. ``post`` (also
    run off the loop for a big reply) turns zeep's result into plain data."""

    def __init__(
        self,
        proxy: AsyncServiceProxy | tuple[zeep.AsyncClient, Any, str],
        http: httpx.AsyncClient,
        *,
        system: str,
        timeout: float,
        max_reply_bytes: int,
    ) -> None:
        """``proxy``: a zeep service proxy, or ``shared_binding``'s ``(client, binding,
        address)``."""
        if isinstance(proxy, tuple):
            self.client, self.binding, address = proxy
        else:
            self.client, self.binding = proxy._client, proxy._binding
            address = proxy._binding_options["address"]
        self.options: dict[str, Any] = {"address": address}  # this service's own
        self.address: str = address
        self.http = http
        self.system = system
        self.timeout = timeout
        self.max_reply_bytes = max_reply_bytes

    def envelope(self, operation: str, kwargs: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The request for ``operation`` and its HTTP headers, built by zeep from the WSDL -
        or from zeep's own rendering of the same request shape, kept (``RequestShapes``)."""
        fast = _shapes.render(self, operation, kwargs)
        if fast is not None:
            return fast
        return self.zeep_envelope(operation, kwargs, self.options)

    def zeep_envelope(
        self, operation: str, kwargs: dict[str, Any], options: dict[str, Any]
    ) -> tuple[bytes, dict[str, str]]:
        envelope, headers = self.binding._create(
            operation, (), kwargs, client=self.client, options=options
        )
        return etree_to_string(envelope), dict(headers)

    async def exchange(
        self, operation: str, message: bytes, headers: dict[str, str], read: Callable[[Reply], T]
    ) -> T:
        """POST ``message`` and ``read`` the reply, all within the limits."""
        async with replies.deadline(self.timeout, f"{self.system} {operation}"):
            reply = await replies.request(
                self.http,
                "POST",
                self.address,
                content=message,
                headers=headers,
                max_bytes=self.max_reply_bytes,
                system=self.system,
            )
            return await replies.parse(reply.content, lambda: read(reply))

    async def call(
        self, operation: str, kwargs: dict[str, Any], post: Callable[[Any], T] = lambda r: r
    ) -> T:
        message, headers = self.envelope(operation, kwargs)
        op = self.binding.get(operation)
        return await self.exchange(
            operation, message, headers, lambda reply: post(self._result(op, reply))
        )

    async def call_plain(
        self, operation: str, kwargs: dict[str, Any], post: Callable[[Any], T] = lambda r: r
    ) -> T:
        """``call``, with the reply read as plain data (``plain_tree`` of the body's element)
        instead of mapped by zeep: what ``zeep.helpers.serialize_object`` makes of zeep's
        answer, wrapped in the response element's children (``{"return": {...}}``), without
        the schema's types - dates, numbers and booleans stay text, an element that occurs
        once is a single value even where the schema allows many, absent elements are
        absent - at a fraction of zeep's cost. Faults, HTTP errors and what is not a SOAP
        envelope are refused exactly as by ``call``."""
        message, headers = self.envelope(operation, kwargs)
        op = self.binding.get(operation)
        return await self.exchange(
            operation, message, headers, lambda reply: post(self._plain_result(op, reply))
        )

    def _plain_result(self, op: Any, reply: Reply) -> Any:
        doc = self._checked(op, reply)
        body = doc.find("soap-env:Body", namespaces=self.binding.nsmap)
        if body is None:
            raise zx.XMLParseError("the reply has no SOAP body")
        wrapper = next((c for c in body if type(c.tag) is str), None)
        return None if wrapper is None else plain_tree(wrapper)

    def _checked(self, op: Any, reply: Reply) -> etree._Element:
        """The reply's envelope, once faults and HTTP errors are refused."""
        doc = soap_envelope(reply, self.system)
        if doc.find("soap-env:Body/soap-env:Fault", namespaces=self.binding.nsmap) is not None:
            self.binding.process_error(doc, op)  # raises zeep's Fault
        if reply.status_code != 200:
            raise BackendUnavailable(
                f"{self.system} answered HTTP {reply.status_code}", retry_after=30
            )
        return doc

    def _result(self, op: Any, reply: Reply) -> Any:
        return op.process_reply(self._checked(op, reply))


def bounded_service(
    document: Document,
    http: httpx.AsyncClient,
    *,
    endpoint: str | None,
    system: str,
    timeout: float,
    max_reply_bytes: int,
) -> BoundedService:
    """A ``BoundedService`` sending through ``http`` (the adaptor's own client) to
    ``endpoint``, building its requests with the document's shared client (no zeep client,
    proxy or transport of its own: a council's first call does not build them)."""
    return BoundedService(
        shared_binding(document, endpoint),
        http,
        system=system,
        timeout=timeout,
        max_reply_bytes=max_reply_bytes,
    )


def client_for(timeout: float, *, max_connections: int | None = 100) -> httpx.AsyncClient:
    """An adaptor's own ``httpx.AsyncClient`` (its headers, cookies and cap on connections in
    use) on the process's shared connection pools (``replies.SharedPools``: councils on one
    backend host reuse open connections): per-read timeouts as a backstop (the deadline of
    each exchange is ``BoundedService``'s), and only encodings inflated with a bound."""
    return replies.pooled_client(
        max_connections=max_connections,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"Accept-Encoding": replies.ACCEPT_ENCODING},
    )


# -- reading replies ---------------------------------------------------------------------------
_parsers = threading.local()  # lxml parsers must not be shared between threads


def _strict_parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_parsers, "strict", None)
    if parser is None:
        parser = _parsers.strict = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
        )
    return parser


def strict_parse(body: bytes) -> etree._Element:
    """Parse a reply strictly: no DTD, no entity expansion, no network, no huge trees. zeep's
    lenient mode would *recover* broken XML into an empty answer; here it is an error
    (``etree.XMLSyntaxError``; ``zx.DTDForbidden`` for a DTD)."""
    try:
        doc = etree.fromstring(body, _strict_parser())
    except etree.XMLSyntaxError:
        if b"<!DOCTYPE" in body[:4096] or b"<!ENTITY" in body[:65536]:
            raise zx.DTDForbidden("", "", "") from None  # hostile, not merely broken
        raise  # malformed -> BackendUnavailable
    if doc.getroottree().docinfo.doctype:
        raise zx.DTDForbidden(doc.getroottree().docinfo.doctype, "", "")
    return doc


SOAP_NAMESPACES = frozenset(
    {"http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"}
)
_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)


def not_soap(status: int, system: str, *, empty: bool) -> GatewayError:
    """What an empty or non-SOAP reply means: never an answer."""
    if status in (401, 403):
        return BackendAuthFailed(f"{system} refused the gateway's credentials")
    if status < 300:
        what = "an empty reply" if empty else "a reply that is not SOAP"
        return BackendUnavailable(f"{system} sent {what}", retry_after=30)
    return BackendUnavailable(
        f"{system} answered HTTP {status} with {'no body' if empty else 'a non-SOAP page'}",
        retry_after=30,
    )


def soap_envelope(reply: Reply, system: str) -> etree._Element:
    """The reply's SOAP ``Envelope``, parsed strictly. An empty, malformed or non-SOAP body
    (HTML error pages included, whatever their DOCTYPE) raises ``not_soap``'s error; a DTD in
    anything else is refused as hostile (``zx.DTDForbidden``)."""
    body = reply.content
    if not body.strip():
        raise not_soap(reply.status_code, system, empty=True)
    try:
        doc = strict_parse(body)
    except zx.DTDForbidden:
        if _HTML.search(body[:4096]):
            raise not_soap(reply.status_code, system, empty=False) from None
        raise
    except etree.XMLSyntaxError:
        if reply.status_code >= 300 or _HTML.search(body[:4096]):
            raise not_soap(reply.status_code, system, empty=False) from None
        raise  # a truncated or broken SOAP reply -> "malformed" (BackendUnavailable)
    name = etree.QName(doc)
    if name.localname != "Envelope" or name.namespace not in SOAP_NAMESPACES:
        raise not_soap(reply.status_code, system, empty=False)
    return doc

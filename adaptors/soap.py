"""Shared SOAP toolkit for adaptors built on zeep (Civica UH, Kirona DRS, ...).

- ``hardened_settings``: DTDs, entities and external references forbidden; no huge trees;
  lenient on extra/missing elements in replies (``strict=False``).
- ``parsed_wsdl`` + ``bind_client``: the one way to get a service proxy. The WSDL is parsed
  once per process and location (a ``zeep.wsdl.Document``, hardened); each adaptor then binds
  it to *its own* ``httpx.AsyncClient`` (which it creates in its event loop and closes) with
  an async service proxy, at the configured endpoint or the WSDL's address.
- ``strict_parse``: replies are read strictly. zeep's lenient mode (``strict=False``) also makes
  lxml *recover* broken XML, so a truncated reply would silently become a partial or empty
  answer. Adaptors that read replies themselves (Civica UH) parse them with ``strict_parse``;
  clients from ``bind_client`` check every reply with it before zeep reads it (Kirona DRS). A
  malformed reply is an error (-> ``BackendUnavailable``), a DTD is refused.
- ``map_soap_error``: zeep/httpx failures -> the gateway error taxonomy.
- ``retry_reads``: tenacity policy for reads only - bounded, jittered, on connection errors and
  timeouts only (never on faults: those are answers).

See docs/decisions/0004-zeep-settings.md.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import zeep
import zeep.exceptions as zx
from lxml import etree
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsdl import Document

from gateway.errors import (
    BackendAuthFailed,
    BackendCannotAccept,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
)

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
    """Run a read with bounded, jittered retries on connection errors and timeouts only."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.1, max=max_wait),
        retry=retry_if_exception_type(RETRYABLE),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


# -- WSDL documents and clients ----------------------------------------------------------------
_documents: dict[str, Document] = {}
_loading: dict[str, threading.Lock] = {}
_lock = threading.Lock()


def parsed_wsdl(location: str, *, timeout: float = 30.0) -> Document:
    """The WSDL at ``location`` (see ``wsdl_location``), parsed once per process with
    ``hardened_settings``. Blocking (it may fetch the WSDL over HTTP): in async code, call it
    with ``asyncio.to_thread``. Different locations load in parallel."""
    with _lock:
        doc = _documents.get(location)
        if doc is not None:
            return doc
        loading = _loading.setdefault(location, threading.Lock())
    with loading:
        doc = _documents.get(location)
        if doc is None:
            loader = zeep.Transport(timeout=timeout, operation_timeout=timeout)
            doc = Document(location, loader, settings=hardened_settings())  # type: ignore[arg-type]
            with _lock:
                _documents[location] = doc
        return doc


def _closed_client() -> httpx.Client:
    client = httpx.Client()
    client.close()
    return client


# zeep wants a client for fetching WSDL parts; a bound client has its document already.
_NO_FETCHING = _closed_client()


class StrictAsyncTransport(AsyncTransport):
    """zeep's async transport on the adaptor's own ``httpx.AsyncClient``, which checks every
    reply with ``strict_parse`` before zeep's lenient parse can repair it."""

    async def post(self, address: str, message: Any, headers: Any) -> httpx.Response:
        response: httpx.Response = await super().post(address, message, headers)
        if response.content.strip():
            try:
                strict_parse(response.content)
            except etree.XMLSyntaxError:
                if response.status_code >= 300:  # an error page, not a SOAP reply
                    raise zx.TransportError(status_code=response.status_code) from None
                raise
        return response


def bind_client(
    document: Document, http: httpx.AsyncClient, *, endpoint: str | None = None
) -> tuple[zeep.AsyncClient, AsyncServiceProxy]:
    """``(client, service)`` on a parsed ``document`` that send through ``http`` - the caller's
    own client, so each adaptor instance owns (and closes) its connections and event loop.

    The service is async and calls ``endpoint`` when given (with the document's first binding),
    else the address the WSDL declares.
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


# -- reading replies ---------------------------------------------------------------------------
_STRICT = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
)


def strict_parse(body: bytes) -> etree._Element:
    """Parse a reply strictly: no DTD, no entity expansion, no network, no huge trees. zeep's
    lenient mode would *recover* broken XML into an empty answer; here it is an error
    (``etree.XMLSyntaxError``; ``zx.DTDForbidden`` for a DTD)."""
    try:
        doc = etree.fromstring(body, _STRICT)
    except etree.XMLSyntaxError:
        if b"<!DOCTYPE" in body[:4096] or b"<!ENTITY" in body[:65536]:
            raise zx.DTDForbidden("", "", "") from None  # hostile, not merely broken
        raise  # malformed -> BackendUnavailable
    if doc.getroottree().docinfo.doctype:
        raise zx.DTDForbidden(doc.getroottree().docinfo.doctype, "", "")
    return doc

"""Shared SOAP toolkit for adaptors built on zeep (Civica UH, Kirona DRS, ...).

- ``hardened_settings``: DTDs, entities and external references forbidden; no huge trees;
  lenient on extra/missing elements in replies (``strict=False``).
- ``soap_client``: an async zeep client bound to the configured endpoint; the WSDL is parsed
  once per process and (wsdl, endpoint, timeout) and reused by every request.
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
from zeep.transports import AsyncTransport

from gateway.errors import (
    BackendAuthFailed,
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


_clients: dict[tuple[str, str, str | None, float], zeep.AsyncClient] = {}
_lock = threading.Lock()


def wsdl_location(wsdl: str, base: Path | None = None) -> str:
    if wsdl.startswith(("http://", "https://", "file://")):
        return wsdl
    p = Path(wsdl)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve())


def soap_client(
    wsdl: str, *, timeout: float, endpoint: str | None = None, binding: str | None = None
) -> tuple[zeep.AsyncClient, Any]:
    """Return (client, service proxy). Cached per process: the WSDL is parsed once."""
    key = (wsdl, endpoint or "", binding, timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            transport = AsyncTransport(
                client=httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5))),
                wsdl_client=httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5))),
            )
            client = zeep.AsyncClient(wsdl, transport=transport, settings=hardened_settings())
            _clients[key] = client
    if endpoint:
        from zeep.proxy import AsyncServiceProxy

        # zeep's AsyncClient.create_service returns a *sync* proxy; build the async one.
        name = binding or next(iter(client.wsdl.bindings))
        service = AsyncServiceProxy(client, client.wsdl.bindings[name], address=endpoint)
    else:
        service = client.service
    return client, service


async def close_clients() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for c in clients:
        try:
            await c.transport.aclose()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass


def map_soap_error(exc: BaseException, system: str) -> GatewayError:
    """Translate a transport/protocol failure into the gateway's taxonomy."""
    if isinstance(exc, GatewayError):
        return exc
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
        return BackendRejected(f"{system} refused the request: {exc.message}")
    if isinstance(exc, zx.XMLSyntaxError | etree.XMLSyntaxError | zx.XMLParseError):
        return BackendUnavailable(f"{system} sent a malformed reply", retry_after=30)
    if isinstance(exc, zx.ValidationError):
        return BackendRejected(f"{system} request could not be built: {exc}")
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


# -- added for adaptors that own their HTTP client (civica_uh) ----------------------------------
_documents: dict[str, zeep.AsyncClient] = {}


def parsed_wsdl(wsdl: str, *, timeout: float = 30.0) -> zeep.AsyncClient:
    """The WSDL at ``wsdl`` parsed once per process (hardened settings), as a template client.

    Blocking (it may fetch the WSDL over HTTP): call it from a thread in async code.
    """
    with _lock:
        template = _documents.get(wsdl)
        if template is None:
            wsdl_client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5)))
            try:
                transport = AsyncTransport(client=httpx.AsyncClient(), wsdl_client=wsdl_client)
                template = zeep.AsyncClient(wsdl, transport=transport, settings=hardened_settings())
            finally:
                wsdl_client.close()
            _documents[wsdl] = template
    return template


def bind_client(
    template: zeep.AsyncClient,
    http: httpx.AsyncClient,
    *,
    endpoint: str | None = None,
    binding: str | None = None,
) -> Any:
    """A service proxy on a parsed WSDL that sends through the caller's own ``httpx`` client
    (so each adaptor instance owns, and closes, its connections and event loop)."""
    import copy

    from zeep.proxy import AsyncServiceProxy

    client = copy.copy(template)
    client.transport = AsyncTransport(client=http, wsdl_client=httpx.Client())
    if endpoint:
        # zeep's AsyncClient.create_service returns a *sync* proxy; build the async one.
        name = binding or next(iter(client.wsdl.bindings))
        return AsyncServiceProxy(client, client.wsdl.bindings[name], address=endpoint)
    return client.bind()

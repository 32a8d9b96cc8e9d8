"""Why an adaptor could not start or reach its backend, in plain words for council IT.

``reason(exc)`` gives a short, safe sentence: the gateway's own words, chosen by the kind of
failure (refused connection, unknown host, timeout, TLS, refused credentials, a file missing
or malformed), never the vendor's text, never a URL or a host. Used by ``repairs-gateway
check --connect``, by the start-up retries (``adaptor.start_failed reason=...``) and by the
status page.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Iterator

import httpx

from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendCannotAccept,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    NotAttempted,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network(exc: BaseException) -> str | None:
    if isinstance(exc, httpx.ConnectTimeout):
        return "could not connect in time (is the host right, and is a firewall dropping it?)"
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return "the backend accepted the connection but did not answer in time"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the backend's TLS certificate was not trusted"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake with the backend failed"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return "connection refused: nothing is listening at the configured address and port"
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectError | OSError):
        if "name or service not known" in text or "nodename nor servname" in text:
            return "the backend's host name was not found (DNS)"
        if "temporary failure in name resolution" in text or "getaddrinfo" in text:
            return "the backend's host name could not be resolved (DNS)"
        if "connection refused" in text or "connect call failed" in text:
            return "connection refused: nothing is listening at the configured address and port"
        if "network is unreachable" in text or "no route to host" in text:
            return "the backend's network is unreachable from here"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the backend"
    return None


def reason(exc: BaseException, timeout: float | None = None) -> str:
    """A plain, safe sentence saying why ``exc`` happened (see the module docstring)."""
    from gateway.textfiles import TextFileError

    for e in _chain(exc):
        # the CSV fallback's own text (file, line, what is wrong): no vendor in it
        if isinstance(e, TextFileError) or type(e).__name__ == "PropertyFileError":
            return f"property file: {e}"
        if isinstance(e, UnicodeDecodeError):
            return (
                "a file is not UTF-8, UTF-16 or Windows-1252 text "
                "(`repairs-gateway check` names the line)"
            )
    for e in _chain(exc):
        found = _network(e)
        if found:
            return found
    if isinstance(exc, TimeoutError):
        limit = f" after {timeout:g} s" if timeout else ""
        return f"timed out{limit} (the backend, or fetching its WSDL, is too slow or hangs)"
    for e in _chain(exc):
        if isinstance(e, BackendAuthFailed):
            return (
                "the backend refused the gateway's credentials "
                "(check the username, password or secret options)"
            )
        if isinstance(e, httpx.HTTPStatusError):
            code = e.response.status_code
            if code in (401, 403):
                return f"the backend refused the gateway's credentials (HTTP {code})"
            return f"the backend answered HTTP {code}"
    for e in _chain(exc):
        if isinstance(e, FileNotFoundError):
            return "a file named in the options was not found"
    if isinstance(exc, GatewayError):
        detail = exc.detail.lower()
        if "wsdl" in detail or "service description" in detail:
            return "the backend's service description (WSDL) could not be loaded"
        if "property file" in detail and "not found" in detail:
            return "the property file was not found"
        if isinstance(exc, NotAttempted):
            return "not attempted (its circuit is open or time ran out)"
        if isinstance(exc, BackendCannotAccept):
            return "the backend could not accept the request"
        if isinstance(exc, BackendRejected):
            return "the backend answered with a refusal"
        if isinstance(exc, BackendUnavailable):
            return "the backend did not answer properly (down, or an error page)"
        return exc.slug
    return f"unexpected {type(exc).__name__} (an adaptor bug? see the logs)"

"""Transport for one UH service (PropertyService or RepairService) over zeep.

Adds the ``WebRequest`` header fields to every ``dto``, bounds every call (one deadline for
connect, send, transfer and parsing; a cap on the reply's decompressed bytes; big replies parsed
off the event loop - ``repairs_gateway_sdk.soap.BoundedService``), retries reads (only) on
connection errors and timeouts, and maps SOAP faults and ``Success=false`` replies to the
error taxonomy.
An empty or non-SOAP reply is never an answer (ADR 0004). Never logs request or reply
contents.
"""

from __future__ import annotations

from typing import Any

import structlog
import zeep.exceptions as zx

from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
)
from repairs_gateway_sdk.replies import Reply
from repairs_gateway_sdk.soap import (
    BoundedService,
    map_soap_error,
    plain_tree,
    retry_reads,
    soap_envelope,
)

log = structlog.get_logger("adaptors.civica_uh")
SYSTEM = "Civica UH"

_AUTH_WORDS = ("authenticat", "password", "credential", "login", "unauthori", "session")
_DOWN_WORDS = ("unavailable", "timeout", "timed out", "try again", "database", "busy")
_NOT_FOUND_WORDS = ("not found", "does not exist", "no record", "unknown reference")


class UHFailure(BackendRejected):
    """``Success=false`` from UH that the caller may interpret (e.g. "not found")."""

    def __init__(self, detail: str, *, code: Any, message: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message

    @property
    def not_found(self) -> bool:
        text = self.message.lower()
        return any(w in text for w in _NOT_FOUND_WORDS)


def failure_error(op: str, code: Any, message: str) -> GatewayError:
    """Map a ``Success=false`` reply. The vendor's message is kept for interpretation only:
    it can echo what was sent, so it is never put in the detail or the logs."""
    text = message.lower()
    if any(w in text for w in _AUTH_WORDS):
        return BackendAuthFailed(f"{SYSTEM} refused the gateway's credentials ({op})")
    if any(w in text for w in _DOWN_WORDS):
        return BackendUnavailable(f"{SYSTEM} could not complete {op} (error {code})")
    return UHFailure(f"{SYSTEM} refused {op} (error {code})", code=code, message=message)


def field(obj: Any, name: str) -> Any:
    """An element of a zeep reply, None when absent (replies may omit optional elements)."""
    if obj is None:
        return None
    try:
        return obj[name]
    except (KeyError, TypeError, AttributeError, IndexError):
        return getattr(obj, name, None)


def text(obj: Any, name: str) -> str | None:
    value = field(obj, name)
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def items(obj: Any, array: str, item: str) -> list[Any]:
    """The items of a WCF ``ArrayOfX`` element (``<Array><X/><X/></Array>``), tolerant of both
    zeep's flattened list and the nested form."""
    value = field(obj, array)
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    inner = field(value, item)
    if inner is None:
        return []
    if isinstance(inner, list):
        return [v for v in inner if v is not None]
    return [inner]


SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"


def parse_reply(reply: Reply) -> Any:
    """The ``<opResult>`` of a SOAP 1.1 reply as plain data. Faults raise the zeep exceptions
    that ``map_failure`` understands; an empty or non-SOAP body (an empty 200, an HTML error
    page) raises ``BackendUnavailable`` (``BackendAuthFailed`` for 401/403): never an empty
    answer."""
    status = reply.status_code
    doc = soap_envelope(reply, SYSTEM)
    soap_body = doc.find(f"{SOAP_ENV}Body")
    if soap_body is None:
        raise zx.XMLParseError("the reply has no SOAP body")
    fault = soap_body.find(f"{SOAP_ENV}Fault")
    if fault is not None:
        raise zx.Fault(
            message=fault.findtext("faultstring") or "", code=fault.findtext("faultcode")
        )
    if status >= 300:
        raise zx.TransportError(status_code=status)
    wrapper = next((c for c in soap_body if isinstance(c.tag, str)), None)
    if wrapper is None:
        raise zx.XMLParseError("the reply's SOAP body is empty")
    result = next((c for c in wrapper if isinstance(c.tag, str)), None)
    tree = None if result is None else plain_tree(result)
    return tree if isinstance(tree, dict) else {}


def map_failure(exc: BaseException) -> GatewayError:
    """Like ``map_soap_error``, with two UH specifics: a non-SOAP error page (IIS/proxy HTML
    that zeep reports as an "unknown fault") is an outage, and a ``Server`` fault that is not
    about credentials is UH failing, not UH refusing, so it is worth retrying later."""
    if isinstance(exc, zx.Fault):
        code = str(exc.code or "")
        message = (exc.message or "").lower()
        if not code and "unknown fault" in message:
            return BackendUnavailable(f"{SYSTEM} answered with an error page", retry_after=30)
        if code.split(":")[-1].lower().startswith("server") and not any(
            w in message for w in _AUTH_WORDS
        ):
            return BackendUnavailable(
                f"{SYSTEM} failed while processing the request", retry_after=30
            )
    return map_soap_error(exc, SYSTEM)


class UHService:
    """One UH service. zeep builds (and checks) each request from the WSDL; the reply is read
    within the service's limits and parsed with a strict, hardened lxml parse into plain data -
    faster than zeep's object mapping and tolerant of extra or missing elements by
    construction."""

    def __init__(
        self, service: BoundedService, *, header: dict[str, Any], read_attempts: int
    ) -> None:
        self.service = service
        self.address = service.address
        self.header = header
        self.read_attempts = read_attempts

    def envelope(self, op: str, dto: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        return self.service.envelope(op, {"dto": dto})

    async def call(self, op: str, *, read: bool, **fields: Any) -> Any:
        """Call ``op`` with ``dto = header + fields``; return the ``<op>Result`` on success."""
        dto = {**self.header, **fields}

        async def once() -> Any:
            body, headers = self.envelope(op, dto)
            return await self.service.exchange(op, body, headers, parse_reply)

        try:
            if read:
                result = await retry_reads(once, attempts=self.read_attempts)
            else:
                result = await once()
        except Exception as exc:  # noqa: BLE001 - every failure is mapped to the taxonomy
            err = map_failure(exc)
            log.warning(
                "civica_uh.call_failed", op=op, error=type(err).__name__, cause=type(exc).__name__
            )
            raise err from None
        if str(field(result, "Success")).strip().lower() == "false":
            code = field(result, "ErrorCode")
            err = failure_error(op, code, text(result, "ErrorMessage") or "")
            log.info("civica_uh.refused", op=op, error_code=code, error=type(err).__name__)
            raise err
        return result

"""The DRS transport: one zeep client and one shared session per adaptor.

Sessions are opened lazily, shared by concurrent requests (one ``openSession`` at a time,
under an ``asyncio.Lock``), reused for the London calendar day they were opened on, re-opened
once when DRS says the session is invalid (or the day has changed) and closed by ``close``.
Reads are retried (bounded, jittered) on connection errors and timeouts; writes never are -
the adaptor decides what to do with a lost write reply (it looks the order up first). Every call
is one bounded exchange (``repairs_gateway_sdk.soap.BoundedService``): ``timeout_seconds``
covers connect, send, reply and parsing, the reply is capped at ``max_reply_bytes``
decompressed, and a big reply is parsed (zeep's mapping and ``check_reply`` included) off
the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import structlog
import zeep
from zeep.wsdl import Document

from adaptors.kirona_drs.config import KironaDRSConfig
from adaptors.kirona_drs.wire import (
    SYSTEM,
    DRSFailure,
    SessionInvalid,
    check_reply,
    failure_to_gateway,
    request_for,
)
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.soap import (
    BoundedService,
    bounded_service,
    client_for,
    load_wsdl,
    map_soap_error,
    retry_reads,
    wsdl_location,
)
from repairs_gateway_sdk.timeutil import today_london

log = structlog.get_logger("adaptors.kirona_drs")

READS = frozenset({"checkAvailability", "selectOrder", "selectBooking"})
# replies read as plain data (``BoundedService.call_plain``: text, not zeep's typed objects,
# several times cheaper): the availability windows, the one call made many times a page,
# and the session a council's first call opens (only its status and id are read)
PLAIN = frozenset({"checkAvailability", "openSession"})


class DRSClient:
    def __init__(
        self, config: KironaDRSConfig, base: Path, today: Callable[[], date] = today_london
    ) -> None:
        self.config = config
        self.wsdl = wsdl_location(config.wsdl, base)
        self.today = today
        self._client: zeep.AsyncClient | None = None
        self._service: BoundedService | None = None
        self._http: httpx.AsyncClient | None = None
        self._setup_lock = asyncio.Lock()
        self._session_lock = asyncio.Lock()
        self._session: str | None = None
        self._session_day: date | None = None
        self.sessions_opened = 0

    # -- plumbing -----------------------------------------------------------------------
    async def document(self) -> Document:
        """The WSDL, parsed once per process and location (shared by every adaptor on it)."""
        try:
            return await load_wsdl(
                self.wsdl,
                timeout=self.config.timeout_seconds,
                max_bytes=self.config.max_reply_bytes,
            )
        except Exception as exc:  # noqa: BLE001 - any load failure is an outage
            log.warning("drs.wsdl_unavailable", error=type(exc).__name__)
            raise map_soap_error(exc, SYSTEM) from None

    async def _ensure_client(self) -> tuple[zeep.AsyncClient, BoundedService]:
        if self._client is None or self._service is None:
            async with self._setup_lock:
                if self._client is None:
                    timeout = self.config.timeout_seconds
                    doc = await self.document()
                    # its own client on the process's shared connection pools; requests
                    # built with the WSDL's shared zeep client (soap.bounded_service)
                    http = client_for(timeout)
                    service = bounded_service(
                        doc,
                        http,
                        endpoint=self.config.endpoint,
                        system=SYSTEM,
                        timeout=timeout,
                        max_reply_bytes=self.config.max_reply_bytes,
                    )
                    self._client, self._service, self._http = service.client, service, http
        assert self._client is not None and self._service is not None
        return self._client, self._service

    async def _send(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One call, no session handling: raises SessionInvalid/DRSFailure or transport errors."""
        client, service = await self._ensure_client()
        request = request_for(client, operation, body)
        call = service.call_plain if operation in PLAIN else service.call
        return await call(operation, request, lambda reply: check_reply(reply, operation))

    # -- sessions -----------------------------------------------------------------------
    async def session(self) -> str:
        today = self.today()
        if self._session is not None and self._session_day == today:
            return self._session
        async with self._session_lock:
            if self._session is not None and self._session_day == today:
                return self._session
            stale = self._session
            self._session = None
            if stale is not None:
                await self._close_quietly(stale)
            try:
                data = await self._send(
                    "openSession",
                    {
                        "login": self.config.login,
                        "password": self.config.password.get_secret_value(),
                    },
                )
            except (DRSFailure, SessionInvalid) as exc:
                raise failure_to_gateway(DRSFailure("failure", str(exc)), "openSession") from None
            except Exception as exc:  # noqa: BLE001 - transport failures -> taxonomy
                raise map_soap_error(exc, SYSTEM) from None
            sid = str(data.get("sessionId") or "")
            if not sid:
                raise map_soap_error(zeep.exceptions.Error("no sessionId"), SYSTEM)
            self._session, self._session_day = sid, today
            self.sessions_opened += 1
            log.info("drs.session_opened")
            return sid

    async def _drop(self, sid: str) -> None:
        async with self._session_lock:
            if self._session == sid:
                self._session = None

    async def _close_quietly(self, sid: str) -> None:
        try:
            await self._send("closeSession", {"sessionId": sid})
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass

    async def close(self) -> None:
        async with self._session_lock:
            sid, self._session = self._session, None
        if sid is not None and self._client is not None:
            await self._close_quietly(sid)
            log.info("drs.session_closed")
        if self._http is not None:
            await self._http.aclose()
        self._client = self._service = self._http = None

    # -- calls --------------------------------------------------------------------------
    async def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call ``operation`` with the session; re-open the session once if DRS refuses it.

        Raises gateway errors for refusals, and lets ``httpx.TimeoutException`` /
        ``httpx.TransportError`` through for writes so the caller can look the order up.
        """
        for attempt in (1, 2):
            sid = await self.session()
            try:
                if operation in READS:
                    return await retry_reads(
                        lambda sid=sid: self._send(operation, {**body, "sessionId": sid}),  # type: ignore[misc]
                        attempts=self.config.read_attempts,
                    )
                return await self._send(operation, {**body, "sessionId": sid})
            except SessionInvalid:
                log.info("drs.session_invalid", operation=operation, attempt=attempt)
                await self._drop(sid)
                if attempt == 2:
                    raise BackendUnavailable(
                        f"{SYSTEM} refused a freshly opened session", retry_after=30
                    ) from None
            except DRSFailure:
                raise
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if operation in READS:
                    raise map_soap_error(exc, SYSTEM) from None
                raise
            except Exception as exc:  # noqa: BLE001 - faults, parse errors -> taxonomy
                raise map_soap_error(exc, SYSTEM) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """``call`` with DRS refusals mapped to the gateway's taxonomy."""
        try:
            return await self.call(operation, body)
        except DRSFailure as exc:
            raise failure_to_gateway(exc, operation) from None

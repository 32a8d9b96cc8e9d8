"""Transport for Totalmobile's REST APIs: one long-lived ``httpx.AsyncClient``, bearer tokens
from :class:`TokenManager`, bounded jittered retries for reads only, and failures mapped to the
gateway's error taxonomy. The paths follow ``openapi.yaml`` beside this file.

Every exchange is bounded (``adaptors/replies.py``): ``timeout_seconds`` is a total deadline
for connect, send and the whole reply (not only per read), the reply is capped at
``max_reply_bytes`` decompressed, and a big JSON body is parsed off the event loop.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from adaptors.totalmobile.auth import TokenManager
from adaptors.totalmobile.config import TotalmobileConfig
from adaptors.totalmobile.errors import SYSTEM, OutcomeUnknown, retry_after
from repairs_gateway_sdk import replies
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendUnavailable
from repairs_gateway_sdk.replies import Reply, ReplyTooLarge

log = structlog.get_logger("adaptors.totalmobile")

JSON = "application/json"
SERVICE_CONNECT = "application/json; version=3"
RETRY_STATUS = {500, 502, 503, 504}


class TotalmobileClient:
    def __init__(
        self, config: TotalmobileConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        t = config.timeout_seconds
        self.http = httpx.AsyncClient(
            base_url=config.base_url,
            timeout=httpx.Timeout(t, connect=min(t, 5.0)),
            headers={
                "User-Agent": "repairs-gateway (totalmobile adaptor)",
                "Accept-Encoding": replies.ACCEPT_ENCODING,
            },
            # its own client (headers, cookies, a cap on connections in use) on the process's
            # connection pools, shared per backend host; one TLS context per process
            transport=transport if transport is not None else replies.SharedPools(),
            verify=replies.shared_tls(),
        )
        self.tokens = TokenManager(
            self.http,
            token_url=config.token_path,
            client_id=config.client_id,
            client_secret=config.client_secret.get_secret_value(),
            scope=config.scope,
            margin_seconds=config.token_refresh_margin_seconds,
            timeout=t,
            max_bytes=config.max_reply_bytes,
        )
        world = quote(config.world, safe="")
        self.jobs_path = f"/api/optimise/worlds/{world}/jobs"
        self.sc_path = f"/api/serviceconnect/worlds/{world}"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send_authorised(
        self,
        method: str,
        path: str,
        *,
        op: str,
        accept: str,
        params: dict[str, Any] | None,
        json: Any,
    ) -> Reply:
        """Send once with the shared token; on 401 refresh the token once and send again."""
        for attempt in (1, 2):
            token = await self.tokens.token()
            resp = await self._exchange(method, path, op, token, accept, params, json)
            if resp.status_code == 401 and attempt == 1:
                log.info("totalmobile.token.rejected", op=op)
                self.tokens.invalidate(token)
                continue
            if resp.status_code in (401, 403):
                log.warning("totalmobile.auth.refused", op=op, status=resp.status_code)
                raise BackendAuthFailed(f"{SYSTEM} refused the gateway's credentials ({op})")
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self,
        method: str,
        path: str,
        op: str,
        token: str,
        accept: str,
        params: dict[str, Any] | None,
        json: Any,
    ) -> Reply:
        """One request and its whole reply (JSON parsed), within the deadline and the cap."""
        async with replies.deadline(self.config.timeout_seconds, f"{SYSTEM} {op}"):
            resp = await replies.request(
                self.http,
                method,
                path,
                max_bytes=self.config.max_reply_bytes,
                system=SYSTEM,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": accept},
            )
            await resp.load_json()
            return resp

    async def read(
        self,
        path: str,
        *,
        op: str,
        params: dict[str, Any] | None = None,
        accept: str = JSON,
    ) -> Reply:
        """A GET: retried (bounded, jittered) on timeouts, connection errors, 5xx and 429.

        Returns the response for any other status; the caller interprets 2xx/4xx.
        """
        attempts = self.config.read_attempts
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                resp = await self._send_authorised(
                    "GET", path, op=op, accept=accept, params=params, json=None
                )
            except httpx.TimeoutException:
                log.info("totalmobile.read.timeout", op=op, attempt=attempt)
                if last:
                    raise BackendUnavailable(f"{SYSTEM} did not answer in time ({op})") from None
                await asyncio.sleep(_backoff(attempt))
                continue
            except (httpx.TransportError, httpx.DecodingError) as exc:
                log.info(
                    "totalmobile.read.transport", op=op, attempt=attempt, error=type(exc).__name__
                )
                if last:
                    raise BackendUnavailable(f"{SYSTEM} could not be reached ({op})") from None
                await asyncio.sleep(_backoff(attempt))
                continue
            if resp.status_code == 429:
                wait = retry_after(resp, 1)
                log.info("totalmobile.read.throttled", op=op, attempt=attempt, retry_after=wait)
                if last or wait > self.config.max_retry_after_seconds:
                    raise BackendUnavailable(
                        f"{SYSTEM} is throttling requests ({op})", retry_after=wait
                    )
                await asyncio.sleep(wait + random.uniform(0, 0.1))
                continue
            if resp.status_code in RETRY_STATUS:
                log.info("totalmobile.read.failed", op=op, attempt=attempt, status=resp.status_code)
                if last:
                    raise BackendUnavailable(
                        f"{SYSTEM} answered HTTP {resp.status_code} ({op})",
                        retry_after=retry_after(resp, 30),
                    )
                await asyncio.sleep(_backoff(attempt))
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def write(
        self,
        method: str,
        path: str,
        *,
        op: str,
        json: Any = None,
        accept: str = JSON,
    ) -> Reply:
        """A POST/PUT/DELETE: never retried here. A reply that may have been lost after the
        vendor acted raises :class:`OutcomeUnknown`, so the caller can look before retrying."""
        try:
            resp = await self._send_authorised(
                method, path, op=op, accept=accept, params=None, json=json
            )
        except httpx.ConnectError:
            # Nothing reached the vendor: safe for the caller to treat as "not done".
            raise BackendUnavailable(f"{SYSTEM} could not be reached ({op})") from None
        except httpx.TimeoutException:
            log.info("totalmobile.write.timeout", op=op)
            raise OutcomeUnknown(f"{SYSTEM} did not answer in time ({op})") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            log.info("totalmobile.write.transport", op=op, error=type(exc).__name__)
            raise OutcomeUnknown(f"{SYSTEM} reply was lost ({op})") from None
        except ReplyTooLarge as exc:
            # the vendor may have acted: the caller looks before doing anything again
            log.info("totalmobile.write.too_large", op=op)
            raise OutcomeUnknown(exc.detail) from None
        if resp.status_code == 429:
            raise BackendUnavailable(
                f"{SYSTEM} is throttling requests ({op})", retry_after=retry_after(resp, 1)
            )
        if resp.status_code >= 500:
            log.info("totalmobile.write.failed", op=op, status=resp.status_code)
            raise OutcomeUnknown(
                f"{SYSTEM} answered HTTP {resp.status_code} ({op})",
                retry_after=retry_after(resp, 30),
            )
        return resp


def _backoff(attempt: int) -> float:
    """Full jitter: up to 0.1 s, 0.2 s, 0.4 s ... capped at 2 s."""
    return random.uniform(0, min(2.0, 0.1 * 2 ** (attempt - 1)))

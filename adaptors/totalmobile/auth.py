"""OAuth2 client credentials for Totalmobile: one token, shared by every request.

The token is fetched once, cached until ``margin`` seconds before it expires, and replaced at
most once at a time: concurrent requests that find no valid token wait on one fetch. A 401 on
a request invalidates only the token that request used, so a burst of 401s causes one refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import structlog

from adaptors.totalmobile.errors import SYSTEM, retry_after
from repairs_gateway_sdk import replies
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendRejected, BackendUnavailable

log = structlog.get_logger("adaptors.totalmobile.auth")


class TokenManager:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        margin_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
        max_bytes: int = 2 * replies.MiB,
    ) -> None:
        self._http = http
        self._url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        self._margin = margin_seconds
        self._clock = clock
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _current(self) -> str | None:
        if self._token is not None and self._clock() < self._valid_until:
            return self._token
        return None

    async def token(self) -> str:
        tok = self._current()
        if tok is not None:
            return tok
        async with self._lock:
            tok = self._current()
            if tok is not None:
                return tok
            return await self._fetch()

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` (refused with 401); a newer token fetched meanwhile is kept."""
        if self._token == stale:
            self._token = None

    async def _fetch(self) -> str:
        self.fetches += 1
        try:
            async with replies.deadline(self._timeout, f"{SYSTEM} token"):
                resp = await replies.request(
                    self._http,
                    "POST",
                    self._url,
                    max_bytes=self._max_bytes,
                    system=f"{SYSTEM} token service",
                    data=self._form,
                    headers={"Accept": "application/json"},
                )
        except httpx.TimeoutException:
            raise BackendUnavailable(f"{SYSTEM} token service did not answer in time") from None
        except (httpx.TransportError, httpx.DecodingError):
            raise BackendUnavailable(f"{SYSTEM} token service could not be reached") from None
        if resp.status_code in (400, 401, 403):
            error = _oauth_error(resp)
            log.warning("totalmobile.token.refused", status=resp.status_code, error=error)
            if error in ("invalid_scope", "unsupported_grant_type", "invalid_request"):
                raise BackendAuthFailed(f"{SYSTEM} refused the token request ({error})")
            raise BackendAuthFailed(f"{SYSTEM} refused the gateway's client credentials")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise BackendUnavailable(
                f"{SYSTEM} token service answered HTTP {resp.status_code}",
                retry_after=retry_after(resp, 30),
            )
        if resp.status_code != 200:
            raise BackendRejected(f"{SYSTEM} token service answered HTTP {resp.status_code}")
        try:
            body = resp.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise BackendUnavailable(f"{SYSTEM} token service sent an unreadable reply") from None
        # Never trust a token for longer than it lives, however short its life.
        margin = min(self._margin, expires_in / 2)
        self._token = token
        self._valid_until = self._clock() + expires_in - margin
        log.info("totalmobile.token.fetched", expires_in=int(expires_in))
        return token


def _oauth_error(resp: replies.Reply) -> str:
    try:
        body = resp.json()
    except ValueError:
        return "unknown"
    return str(body.get("error", "unknown"))[:64] if isinstance(body, dict) else "unknown"

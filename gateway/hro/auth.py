"""The facade's authentication: N&S's bearer tokens (HS256 JWTs, as HRO's own backend issues)
for the council's configured identifier, and a per-source-address rate limit.

The identifier is kept only as its SHA-256 (``HroConfig.identifier_hash``) and compared in
constant time; it arrives in a query string, which the access log never records (it names the
route template only). Tokens are signed with a key derived per council from
``GATEWAY_SECRET_KEY`` (older keys still verify, for rotation), so every replica accepts every
other replica's tokens and a token for one council is refused by another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections import OrderedDict
from collections.abc import Sequence

from repairs_gateway_sdk.errors import RateLimited, Unauthorized

ISSUER = "Housing Repairs Online Api"
AUDIENCE = "Housing Repairs Online"
_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HS256 JWTs per council: ``iss``/``aud`` as HRO's, ``sub`` the council, ``exp``."""

    def __init__(self, secrets: Sequence[str], clock: object = time.time) -> None:
        self._secrets = [s.encode() for s in secrets if s]
        self._clock = clock

    def _key(self, secret: bytes, council: str) -> bytes:
        return hmac.new(secret, b"hro-jwt:" + council.encode(), hashlib.sha256).digest()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def issue(self, council: str, seconds: int) -> str:
        now = int(self._now())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": council, "iat": now, "exp": now + seconds}
        head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signed = f"{head}.{body}".encode()
        sig = hmac.new(self._key(self._secrets[0], council), signed, hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"

    def verify(self, council: str, token: str | None) -> None:
        if not token:
            raise Unauthorized("send the token from POST /authentication as Authorization: Bearer")
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 2048:
            raise Unauthorized("the token is not valid")
        head, body, sig = parts
        try:
            presented = _unb64(sig)
            header = json.loads(_unb64(head))
            claims = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("the token is not valid") from None
        signed = f"{head}.{body}".encode()
        good = any(
            hmac.compare_digest(
                hmac.new(self._key(s, council), signed, hashlib.sha256).digest(), presented
            )
            for s in self._secrets
        )
        if not good or not isinstance(header, dict) or header.get("alg") != "HS256":
            raise Unauthorized("the token is not valid")
        if not isinstance(claims, dict) or claims.get("sub") != council:
            raise Unauthorized("the token is not valid for this council")
        if claims.get("aud") != AUDIENCE or claims.get("iss") != ISSUER:
            raise Unauthorized("the token is not valid")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self._now():
            raise Unauthorized("the token has expired; get a new one from POST /authentication")


class AddressLimiter:
    """A token bucket per (council, source address), bounded in memory. Per process."""

    def __init__(self, size: int = 10_000, clock: object = time.monotonic) -> None:
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._size = size
        self._clock = clock

    def take(self, council: str, address: str, per_minute: int) -> None:
        now = float(self._clock())  # type: ignore[operator]
        key = (council, address)
        tokens, at = self._buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - at) * per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1.0 - tokens) * 60.0 / per_minute)
            raise RateLimited("too many requests from this address", retry_after=max(1, wait))
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._size:
            self._buckets.popitem(last=False)

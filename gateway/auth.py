"""API keys: per client, stored hashed (SHA-256 of a 256-bit random secret), bound to councils
and a role, compared in constant time, rate limited per key.

A key looks like ``rgw_<key_id>_<secret>``; only ``key_id`` and the hash are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from gateway.errors import Forbidden, RateLimited, Unauthorized
from gateway.storage.database import Database, rowcount
from gateway.storage.models import ApiKey
from gateway.timeutil import now

ROLES = ("frontend", "admin")
CACHE_SECONDS = 15.0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Principal:
    key_id: str
    name: str
    councils: frozenset[str]
    role: str
    rate_per_minute: int

    def check_council(self, council: str) -> None:
        if council not in self.councils and "*" not in self.councils:
            raise Forbidden("this API key is not allowed to act for that council", field="council")

    def check_admin(self) -> None:
        if self.role != "admin":
            raise Forbidden("this API key's role does not allow that")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class KeyStore:
    database: Database
    _cache: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    async def create(
        self,
        name: str,
        councils: list[str],
        role: str,
        rate_per_minute: int = 600,
        key_id: str | None = None,
        secret: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key_id = key_id or secrets.token_hex(6)
        clear = f"rgw_{key_id}_{secret or secrets.token_urlsafe(32)}"
        async with self.database.transaction() as s:
            s.add(
                ApiKey(
                    key_id=key_id,
                    key_hash=hash_key(clear),
                    name=name,
                    councils=councils,
                    role=role,
                    rate_per_minute=rate_per_minute,
                )
            )
        return clear

    async def revoke(self, key_id: str) -> bool:
        async with self.database.transaction() as s:
            result = await s.execute(
                update(ApiKey)
                .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        self._cache.pop(key_id, None)
        return rowcount(result) > 0

    async def purge(self, key_id: str) -> None:
        """Delete a revoked key's row (so its id can be reused, e.g. by the local demo)."""
        async with self.database.transaction() as s:
            await s.execute(
                delete(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_not(None))
            )

    async def list(self) -> list[ApiKey]:
        async with self.database.session() as s:
            return list((await s.execute(select(ApiKey).order_by(ApiKey.id))).scalars())

    async def _lookup(self, key_id: str) -> ApiKey | None:
        hit = self._cache.get(key_id)
        t = time.monotonic()
        if hit is not None and t - hit[0] < CACHE_SECONDS:
            return hit[1]
        async with self.database.session() as s:
            row = (
                await s.execute(select(ApiKey).where(ApiKey.key_id == key_id))
            ).scalar_one_or_none()
        self._cache[key_id] = (t, row)
        return row

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise Unauthorized("send an API key in the Authorization: Bearer header")
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "rgw":
            raise Unauthorized("the API key is not valid")
        row = await self._lookup(parts[1])
        expected = row.key_hash if row is not None else hash_key("absent")
        if (
            not hmac.compare_digest(expected, hash_key(presented))
            or row is None
            or row.revoked_at is not None
        ):
            raise Unauthorized("the API key is not valid")
        principal = Principal(
            row.key_id, row.name, frozenset(row.councils), row.role, row.rate_per_minute
        )
        self._take(principal)
        return principal

    def _take(self, p: Principal) -> None:
        """Token bucket: ``rate_per_minute`` sustained, bursts up to the same number."""
        t = time.monotonic()
        cap = float(p.rate_per_minute)
        b = self._buckets.get(p.key_id)
        if b is None:
            b = self._buckets[p.key_id] = _Bucket(cap, t)
        b.tokens = min(cap, b.tokens + (t - b.at) * cap / 60.0)
        b.at = t
        if b.tokens < 1:
            wait = math.ceil((1 - b.tokens) * 60.0 / cap)
            raise RateLimited("rate limit for this API key reached", retry_after=max(1, wait))
        b.tokens -= 1

"""API keys: per client, stored hashed (SHA-256 of a 256-bit random secret), bound to councils
and a role, compared in constant time, rate limited per key across every replica
(gateway/ratelimit.py).

A key looks like ``rgw_<key_id>_<secret>``; only ``key_id`` and the hash are stored. Key rows
are cached for ``CACHE_SECONDS`` (so a key revoked on one replica is refused by every replica
within that time); the cache is bounded, and ids that do not exist are remembered only in a
small bounded cache of their own, so a caller inventing key ids can neither grow memory nor
make more than one database read per invented id and ``CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from gateway.errors import Forbidden, Unauthorized
from gateway.ratelimit import SharedRateLimiter
from gateway.storage.database import Database, rowcount
from gateway.storage.models import ApiKey
from gateway.timeutil import now

ROLES = ("frontend", "admin")
CACHE_SECONDS = 10.0  # a revoked key is refused by every replica within this
CACHE_KEYS = 10_000  # known keys kept
CACHE_MISSES = 1_000  # ids that do not exist, kept (an unauthenticated caller can make these)
KEY_ID = re.compile(r"[A-Za-z0-9-]{1,32}")


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


class _Bounded(OrderedDict[str, tuple[float, ApiKey | None]]):
    """A least-recently-used map of at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: tuple[float, ApiKey | None]) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class KeyStore:
    database: Database
    limiter: SharedRateLimiter | None = None
    _cache: _Bounded = field(default_factory=lambda: _Bounded(CACHE_KEYS))
    _misses: _Bounded = field(default_factory=lambda: _Bounded(CACHE_MISSES))

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = SharedRateLimiter(self.database)

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
        t = time.monotonic()
        hit = self._cache.get(key_id) or self._misses.get(key_id)
        if hit is not None and t - hit[0] < CACHE_SECONDS:
            return hit[1]
        async with self.database.session() as s:
            row = (
                await s.execute(select(ApiKey).where(ApiKey.key_id == key_id))
            ).scalar_one_or_none()
        if row is None:
            self._cache.pop(key_id, None)
            self._misses.put(key_id, (t, None))
        else:
            self._misses.pop(key_id, None)
            self._cache.put(key_id, (t, row))
        return row

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise Unauthorized("send an API key in the Authorization: Bearer header")
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "rgw" or not KEY_ID.fullmatch(parts[1]):
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
        assert self.limiter is not None
        await self.limiter.take(principal.key_id, max(1, principal.rate_per_minute))
        return principal

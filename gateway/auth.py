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
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from gateway.audit import note_principal
from gateway.ratelimit import SharedRateLimiter
from gateway.storage.database import Database, rowcount
from gateway.storage.models import ApiKey, table_of
from repairs_gateway_sdk.errors import Forbidden, Unauthorized
from repairs_gateway_sdk.timeutil import now

# test: a front end's key for sandbox councils only (gateway/sandbox.py), never a real backend
ROLES = ("frontend", "admin", "test")
CACHE_SECONDS = 10.0  # a revoked key is refused by every replica within this
CACHE_KEYS = 10_000  # known keys kept
CACHE_MISSES = 1_000  # ids that do not exist, kept (an unauthenticated caller can make these)
KEY_ID = re.compile(r"[A-Za-z0-9-]{1,32}")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often
NOTE_USED_EVERY = 1.0  # seconds: a key's use is noted at most this often per process
ROTATION_OVERLAP = timedelta(days=7)  # the old key keeps working this long after a rotation


def key_state(row: ApiKey, at: datetime | None = None) -> str:
    """active | expiring (rotated or given an expiry, still accepted) | expired | revoked."""
    at = at or now()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None:
        return "expired" if row.expires_at <= at else "expiring"
    return "active"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Principal:
    key_id: str
    name: str
    councils: frozenset[str]
    role: str
    rate_per_minute: int

    def check_council(self, council: str, sandbox: bool = False) -> None:
        """``sandbox``: the council is a sandbox (gateway/sandbox.py); a test key acts for
        nothing else, wherever the caller does not say so."""
        if council not in self.councils and "*" not in self.councils:
            raise Forbidden("this API key is not allowed to act for that council", field="council")
        if self.role == "test" and not sandbox:
            raise Forbidden("a test key acts only for sandbox councils", field="council")

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
    # key_id -> when it was last used, not yet written (flush_last_used)
    _used: dict[str, datetime] = field(default_factory=dict)
    _used_written: dict[str, datetime] = field(default_factory=dict)
    _known: dict[str, _Known] = field(default_factory=dict)  # derived from cached rows
    # key_id -> monotonic time before which a use need not be noted again (the last-used
    # time is kept to the minute: noting it on every request was a datetime per request)
    _note_due: dict[str, float] = field(default_factory=dict)

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
        *,
        expires_at: datetime | None = None,
        replaces: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if rate_per_minute < 1:
            raise ValueError(f"rate per minute must be at least 1 (got {rate_per_minute})")
        if not councils:
            raise ValueError("a key needs at least one council")
        if expires_at is not None and expires_at <= now():
            raise ValueError("the expiry must be in the future")
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
                    expires_at=expires_at,
                    replaces=replaces,
                )
            )
        return clear

    async def get(self, key_id: str) -> ApiKey | None:
        async with self.database.session() as s:
            return (
                await s.execute(select(ApiKey).where(ApiKey.key_id == key_id))
            ).scalar_one_or_none()

    async def rotate(
        self, key_id: str, overlap: timedelta = ROTATION_OVERLAP
    ) -> tuple[str, ApiKey]:
        """A second key for the same client (name, councils, role, rate); the old one keeps
        working for ``overlap`` (its expiry is brought forward to then, never pushed back).
        Returns the new clear key and the old row. ValueError when the old key is unusable."""
        old = await self.get(key_id)
        if old is None or key_state(old) in ("revoked", "expired"):
            raise ValueError(f"no active key {key_id!r}")
        phase_out = now() + overlap
        new = await self.create(
            old.name,
            list(old.councils),
            old.role,
            old.rate_per_minute,
            expires_at=old.expires_at if old.expires_at and old.expires_at > phase_out else None,
            replaces=old.key_id,
        )
        if old.expires_at is None or old.expires_at > phase_out:
            async with self.database.transaction() as s:
                await s.execute(
                    update(ApiKey).where(ApiKey.key_id == key_id).values(expires_at=phase_out)
                )
        self._cache.pop(key_id, None)
        refreshed = await self.get(key_id)
        assert refreshed is not None
        return new, refreshed

    async def flush_last_used(self) -> None:
        """Write the keys' last-used times gathered since the last flush (one UPDATE per key
        used, at most once per LAST_USED_RESOLUTION per process)."""
        pending, self._used = self._used, {}
        if not pending:
            return
        keys = table_of(ApiKey)
        c = keys.c

        def statements(conn: Connection) -> None:  # one go (Database.write)
            for key_id, at in pending.items():
                conn.execute(
                    update(keys)
                    .where(c.key_id == key_id, c.last_used_at.is_(None) | (c.last_used_at < at))
                    .values(last_used_at=at)
                )

        await self.database.write(statements, background=True)
        self._used_written.update(pending)

    def _note_used(self, key_id: str) -> None:
        t = time.monotonic()
        if self._note_due.get(key_id, 0.0) > t:
            return
        if len(self._note_due) > CACHE_KEYS:
            self._note_due.clear()
        self._note_due[key_id] = t + NOTE_USED_EVERY
        at = now()
        written = self._used_written.get(key_id)
        if written is None or at - written >= LAST_USED_RESOLUTION:
            self._used[key_id] = at.replace(second=0, microsecond=0)
            if len(self._used_written) > CACHE_KEYS:
                self._used_written.clear()

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
        known = self._known.get(parts[1]) if row is not None else None
        if known is None or known[0] is not row:
            known = self._know(parts[1], row)
        _, key_hash, revoked, expires_at, principal = known
        if not hmac.compare_digest(key_hash, hash_key(presented)) or row is None or revoked:
            raise Unauthorized("the API key is not valid")
        if expires_at is not None and expires_at <= now():
            raise Unauthorized("the API key has expired: ask for a new one")
        assert principal is not None
        self._note_used(principal.key_id)
        note_principal(principal.key_id)
        assert self.limiter is not None
        await self.limiter.take(principal.key_id, max(1, principal.rate_per_minute))
        return principal

    def _know(self, key_id: str, row: ApiKey | None) -> _Known:
        """What authentication reads of a key row, read once per row fetched (the row's
        attributes are the ORM's, costly to read on every request)."""
        if row is None:
            return (None, hash_key("absent"), False, None, None)
        known: _Known = (
            row,
            row.key_hash,
            row.revoked_at is not None,
            row.expires_at,
            Principal(row.key_id, row.name, frozenset(row.councils), row.role, row.rate_per_minute),
        )
        if len(self._known) > CACHE_KEYS:
            self._known.clear()
        self._known[key_id] = known
        return known


# (row, key hash, revoked, expires at, principal) of a cached key row
_Known = tuple[ApiKey | None, str, bool, datetime | None, Principal | None]

"""The gateway's side of ``repairs_gateway_sdk.store``: an adaptor's namespaced tables in the
gateway's database. Each adaptor's schema version is recorded in ``adaptor_schema``; creating
and upgrading (``repairs_gateway_sdk.store.create_and_upgrade``, shared with the contract kit's
SQLite store) run under a PostgreSQL advisory lock per namespace, so replicas starting at once
never race to create the same table."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.database import Database
from repairs_gateway_sdk.store import Migration, check_prefix, create_and_upgrade


class NamespacedStore:
    def __init__(self, database: Database, namespace: str) -> None:
        self.database = database
        self.namespace = namespace

    @property
    def dialect(self) -> str:
        return "sqlite" if self.database.is_sqlite else "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.database.session() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.database.transaction() as s:
            yield s

    async def ensure(self, metadata: Any, steps: tuple[Migration, ...] = ()) -> None:
        check_prefix(self.namespace, metadata)
        # Several adaptors of one type (two CSV diaries in a council) start at once: one
        # creation per database and namespace, the others wait for it.
        state: dict[str, Any] = self.database.__dict__.setdefault("_adaptor_stores", {})
        if self.namespace in state.setdefault("done", set()):
            return
        lock = state.setdefault(self.namespace, asyncio.Lock())
        async with lock:
            if self.namespace in state["done"]:
                return
            await self._ensure(metadata, steps)
            state["done"].add(self.namespace)

    async def _ensure(self, metadata: Any, steps: tuple[Migration, ...]) -> None:
        async with self.database.engine.connect() as plain:
            # SQLite: take the write lock before looking (another process may be creating)
            conn = await plain.execution_options(sqlite_immediate=True)
            async with conn.begin():
                await self._create_and_upgrade(conn, metadata, steps)

    async def _create_and_upgrade(
        self, conn: Any, metadata: Any, steps: tuple[Migration, ...]
    ) -> None:
        if not self.database.is_sqlite:
            key = zlib.crc32(f"adaptor-store:{self.namespace}".encode())
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        await create_and_upgrade(conn, self.namespace, metadata, steps)

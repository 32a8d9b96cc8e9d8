"""The kit's own store for stateful adaptors, used when no host (the gateway) offers one: a
SQLite file, the tables created as the gateway's store creates them, each namespace's schema
version recorded. Needs SQLAlchemy and aiosqlite (``pip install 'repairs-gateway-sdk[store]'``).
It does what ``repairs_gateway_sdk.store.Store`` promises on SQLite; the gateway's own store
adds PostgreSQL and its advisory lock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from repairs_gateway_sdk.store import Migration, check_prefix, create_and_upgrade


class SqliteStore:
    """A ``Store`` on one SQLite file (write transactions are ``BEGIN IMMEDIATE``)."""

    def __init__(self, path: Path, namespace: str) -> None:
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        self.namespace = namespace
        self.engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30}
        )

        def no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN

        def begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        event.listen(self.engine.sync_engine, "connect", no_implicit_begin)
        event.listen(self.engine.sync_engine, "begin", begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        async with self.sessions() as s:
            yield s

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.sessions() as s, s.begin():
            await s.connection(execution_options={"sqlite_immediate": True})
            yield s

    async def ensure(self, metadata: Any, steps: tuple[Migration, ...] = ()) -> None:
        check_prefix(self.namespace, metadata)
        async with self.engine.connect() as plain:
            # the write lock before looking (BEGIN IMMEDIATE), as the gateway's store does
            conn = await plain.execution_options(sqlite_immediate=True)
            async with conn.begin():
                await create_and_upgrade(conn, self.namespace, metadata, steps)

    async def close(self) -> None:
        await self.engine.dispose()


def sqlite_store(directory: Path, namespace: str) -> SqliteStore:
    try:
        import aiosqlite  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            f"the adaptor keeps state (store_namespace={namespace!r}); the kit's store needs "
            f"SQLAlchemy and aiosqlite: pip install 'repairs-gateway-sdk[store]' ({exc.name} "
            "is missing)"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    return SqliteStore(directory / f"{namespace}.db", namespace)

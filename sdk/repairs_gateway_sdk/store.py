"""A namespaced store for adaptors that keep state of their own (the CSV fallback's diary).

The gateway hands a stateful adaptor a ``Store``: transactions on the gateway's own database
(SQLite or PostgreSQL, shared by every replica), in which the adaptor owns its tables. The
adaptor declares them on a SQLAlchemy ``MetaData`` of its own, with table names under its own
prefix (``<type_name>_...``, checked), and calls ``await store.ensure(metadata)`` in ``start``:
its tables are created if missing, and each schema version it has applied is recorded (a
later version of the adaptor adds its changes as another step). The gateway's own migrations
never touch an adaptor's tables.

SQLAlchemy is needed only by adaptors that use a store (``pip install
repairs-gateway-sdk[store]``); the protocol below is all an adaptor sees. A host implementing
``Store`` (the gateway on its database, the contract kit on SQLite) creates and versions the
tables with ``create_and_upgrade``, inside its own transaction and locks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import Any, Protocol

__all__ = ["SCHEMA_TABLE", "Migration", "Store", "check_prefix", "create_and_upgrade"]

Migration = Callable[[Any], Awaitable[None]]  # receives an AsyncConnection
SCHEMA_TABLE = "adaptor_schema"  # namespace -> the schema version its tables are at


class Store(Protocol):
    namespace: str  # the adaptor's type name; its tables' prefix

    def session(self) -> AbstractAsyncContextManager[Any]:
        """A read session (SQLAlchemy ``AsyncSession``)."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A write transaction (``AsyncSession``; serialised on SQLite, row locks on
        PostgreSQL with ``with_for_update``)."""

    async def ensure(self, metadata: Any, steps: tuple[Migration, ...] = ()) -> None:
        """Create the adaptor's tables if missing, then run the schema ``steps`` it has not
        run yet (step n is version n + 2; the tables as first declared are version 1)."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""


def check_prefix(namespace: str, metadata: Any) -> None:
    """Refuse tables outside the adaptor's namespace (it must never shadow the gateway's)."""
    for name in metadata.tables:
        if not name.startswith(f"{namespace}_"):
            raise ValueError(
                f"table {name!r} of adaptor {namespace!r} must start with '{namespace}_'"
            )


@cache
def _versions() -> Any:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    return Table(
        SCHEMA_TABLE,
        MetaData(),
        Column("namespace", String(64), primary_key=True),
        Column("version", Integer, nullable=False),
    )


async def create_and_upgrade(
    conn: Any, namespace: str, metadata: Any, steps: tuple[Migration, ...] = ()
) -> int:
    """For hosts: on ``conn`` (an ``AsyncConnection`` in the host's open transaction, after
    any lock the host needs), create the version table and the adaptor's tables if missing,
    run the ``steps`` past the recorded version (step n brings version n + 1 to n + 2: the
    tables as first declared are version 1) and record the version reached, which it returns.
    Tables outside the namespace are refused first. Needs SQLAlchemy (extra ``store``)."""
    from sqlalchemy import select, update

    check_prefix(namespace, metadata)
    versions = _versions()
    await conn.run_sync(versions.metadata.create_all)
    await conn.run_sync(metadata.create_all)
    row = (
        await conn.execute(select(versions.c.version).where(versions.c.namespace == namespace))
    ).first()
    version = 1 if row is None else int(row[0])
    for n, step in enumerate(steps, start=2):
        if n > version:
            await step(conn)
            version = n
    if row is None:
        await conn.execute(versions.insert().values(namespace=namespace, version=version))
    elif version != int(row[0]):
        await conn.execute(
            update(versions).where(versions.c.namespace == namespace).values(version=version)
        )
    return version

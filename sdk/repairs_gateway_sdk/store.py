"""A namespaced store for adaptors that keep state of their own (the CSV fallback's diary).

The gateway hands a stateful adaptor a ``Store``: transactions on the gateway's own database
(SQLite or PostgreSQL, shared by every replica), in which the adaptor owns its tables. The
adaptor declares them on a SQLAlchemy ``MetaData`` of its own, with table names under its own
prefix (``<type_name>_...``, checked), and calls ``await store.ensure(metadata)`` in ``start``:
its tables are created if missing, and each schema version it has applied is recorded (a
later version of the adaptor adds its changes as another step). The gateway's own migrations
never touch an adaptor's tables.

SQLAlchemy is needed only by adaptors that use a store (``pip install
repairs-gateway-sdk[store]``); the protocol below is all an adaptor sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Migration = Callable[[Any], Awaitable[None]]  # receives an AsyncConnection


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

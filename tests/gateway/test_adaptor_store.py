"""An adaptor's store creates its tables and records their version the same way in the gateway
(``NamespacedStore``, SQLite and PostgreSQL) and in the contract kit (its SQLite store): one
piece of code, ``repairs_gateway_sdk.store.create_and_upgrade``. A later release's step runs
once; tables outside the namespace are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text

from gateway.storage.adaptor_store import NamespacedStore
from gateway.storage.database import Database
from repairs_gateway_sdk.testing.store import sqlite_store
from tests.pg import create_database

META = MetaData()
Table("acme_things", META, Column("id", Integer, primary_key=True), Column("name", String(40)))
ran: list[str] = []


async def add_colour(conn: Any) -> None:
    ran.append("colour")
    await conn.execute(text("ALTER TABLE acme_things ADD COLUMN colour VARCHAR(20)"))


@pytest.fixture(params=["gateway-sqlite", "gateway-postgres", "kit"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Any]]:
    """Makes the store anew each time, as each start of a new release would."""
    if request.param.startswith("gateway"):
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
        if request.param == "gateway-postgres":
            admin: str = request.getfixturevalue("postgres_admin_url")
            url = create_database(admin, f"t_{uuid.uuid4().hex[:12]}")

        @asynccontextmanager
        async def make() -> AsyncIterator[Any]:
            db = Database(url)
            try:
                yield NamespacedStore(db, "acme")
            finally:
                await db.dispose()

    else:

        @asynccontextmanager
        async def make() -> AsyncIterator[Any]:
            store = sqlite_store(tmp_path / "kit", "acme")
            try:
                yield store
            finally:
                await store.close()

    ran.clear()
    yield make


async def version(store: Any) -> int:
    async with store.session() as s:
        found = await s.execute(text("SELECT version FROM adaptor_schema WHERE namespace = 'acme'"))
        return int(found.scalar_one())


async def test_tables_are_created_then_upgraded_once(stores: Callable[[], Any]) -> None:
    async with stores() as store:
        await store.ensure(META)
        await store.ensure(META)  # again: nothing to do
        assert await version(store) == 1
    async with stores() as store:  # the next release adds a column
        await store.ensure(META, (add_colour,))
        assert await version(store) == 2
        async with store.transaction() as s:
            await s.execute(text("INSERT INTO acme_things (name, colour) VALUES ('tap', 'red')"))
    async with stores() as store:  # and starts again: the step is not run twice
        await store.ensure(META, (add_colour,))
        assert await version(store) == 2
        async with store.session() as s:
            assert (await s.execute(text("SELECT colour FROM acme_things"))).scalar_one() == "red"
    assert ran == ["colour"]


async def test_tables_outside_the_namespace_are_refused(stores: Callable[[], Any]) -> None:
    other = MetaData()
    Table("outbox_items", other, Column("id", Integer, primary_key=True))
    async with stores() as store:
        with pytest.raises(ValueError, match="must start with 'acme_'"):
            await store.ensure(other)

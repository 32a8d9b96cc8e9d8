"""Alembic environment: runs migrations with the sync driver of the configured database."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from gateway.storage.models import Base

config = context.config
target_metadata = Base.metadata


def gateway_owned(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Tables in the database that the gateway's models do not declare belong to adaptors'
    namespaced stores (repairs_gateway_sdk.store) or their bookkeeping: never the gateway's
    to drop or compare."""
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=gateway_owned,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()

"""The CSV fallback's own tables, in its namespaced store (repairs_gateway_sdk.store): places
taken per slot and the bookings it holds. Created by the adaptor at start (``csv_`` prefix);
the gateway's own schema knows nothing of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMESPACE = "csv"


class Base(DeclarativeBase):
    pass


class CsvSlotUsage(Base):
    """Places taken per trade per slot. Capacity is enforced by a conditional UPDATE so two
    concurrent bookings can never take the last place twice."""

    __tablename__ = "csv_slot_usage"
    __table_args__ = (
        UniqueConstraint("council", "adaptor", "trade", "slot_key", name="uq_csv_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    adaptor: Mapped[str] = mapped_column(String(64))
    trade: Mapped[str] = mapped_column(String(32))
    slot_key: Mapped[str] = mapped_column(String(80))  # "start/end" in ISO UTC
    used: Mapped[int] = mapped_column(Integer, default=0)


class CsvBooking(Base):
    __tablename__ = "csv_bookings"
    __table_args__ = (UniqueConstraint("council", "adaptor", "reference", name="uq_csv_booking"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    council: Mapped[str] = mapped_column(String(64))
    adaptor: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(32))
    trade: Mapped[str] = mapped_column(String(32))
    slot_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))  # booked | cancelled


METADATA = Base.metadata


async def insert_ignoring_conflict(
    session: Any, dialect: str, table: Any, values: dict[str, Any]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(table).values(**values).on_conflict_do_nothing())


def rowcount(result: Any) -> int:
    return int(result.rowcount)

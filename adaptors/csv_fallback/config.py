"""Options of the ``csv_fallback`` adaptor (see README.md beside this file)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repairs_gateway_sdk.adaptor import AdaptorConfig
from repairs_gateway_sdk.model import Trade
from repairs_gateway_sdk.timeutil import parse_clock

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WORKING_WEEK: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]


class SlotTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str
    end: str
    label: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        try:
            parse_clock(v)
        except (ValueError, TypeError):
            raise ValueError(f"{v!r} is not a HH:MM time") from None
        return v


def _default_slots() -> list[SlotTemplate]:
    return [
        SlotTemplate(start="08:00", end="12:00"),
        SlotTemplate(start="12:00", end="16:00"),
        SlotTemplate(start="09:30", end="14:30"),
        SlotTemplate(start="08:00", end="16:00"),
    ]


class CalendarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    working_days: list[Weekday] = Field(default_factory=lambda: list(WORKING_WEEK))
    slots: list[SlotTemplate] = Field(default_factory=_default_slots, min_length=1)
    capacity: int = Field(default=2, ge=0)
    capacity_per_trade: dict[Trade, int] = Field(default_factory=dict)
    lead_time_days: int = Field(default=1, ge=0)
    horizon_days: int = Field(default=42, ge=1, le=366)
    bank_holidays: Literal["england", "wales", "scotland", "northern_ireland"] | None = "england"
    closed_dates: list[date] = Field(default_factory=list)


class CsvFallbackConfig(AdaptorConfig):
    properties_file: str = Field(description="CSV of properties, relative to the config dir")
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    booking_latency_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description="added before each booking: for demos and resilience drills",
    )
    index_dir: str | None = Field(
        default=None, description="where the postcode index is built (default: data dir)"
    )

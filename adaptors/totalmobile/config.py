"""Options of the ``totalmobile`` adaptor (see README.md beside this file)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from repairs_gateway_sdk.adaptor import AdaptorConfig
from repairs_gateway_sdk.model import Trade


class WorkType(BaseModel):
    """What Totalmobile calls the work a trade does: a work type and the skills it needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_type: str = Field(min_length=1, max_length=64)
    skills: list[str] = Field(default_factory=list)


def _default_work_types() -> dict[Trade, WorkType]:
    return {t: WorkType(work_type=t.value.upper()) for t in Trade}


class TotalmobileConfig(AdaptorConfig):
    base_url: str = Field(
        description="root of the Totalmobile tenant, e.g. https://x.totalmobile-cloud.com"
    )
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str = Field(default="optimise serviceconnect")
    world: str = Field(min_length=1, description="the Optimise world (scheduling area) id")
    work_type_map: dict[Trade, WorkType] = Field(default_factory=_default_work_types)
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="total deadline of each call: connect, send and the whole reply",
    )
    max_reply_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=16 * 1024,
        le=256 * 1024 * 1024,
        description="largest reply accepted, in decompressed bytes",
    )
    token_path: str = "/identity/connect/token"
    token_refresh_margin_seconds: float = Field(
        default=60.0, ge=0, description="fetch a new token this long before the old one expires"
    )
    weeks_per_call: int = Field(default=2, ge=1, le=6)
    horizon_days: int = Field(default=42, ge=1, le=366)
    read_attempts: int = Field(default=3, ge=1, le=6)
    max_retry_after_seconds: float = Field(
        default=5.0, ge=0, description="a read told to wait longer than this fails fast instead"
    )
    deletion_reasons: dict[str, str] = Field(
        default_factory=lambda: {"booking failed": "BOOKING_FAILED"},
        description="gateway cancel reason (lower case) -> Totalmobile deletion reason code",
    )
    default_deletion_reason: str = "CUSTOMER_CANCELLED"
    slot_unavailable_deletion_reason: str = "SLOT_UNAVAILABLE"

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("work_type_map", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # ``plumbing: PLUMB`` is shorthand for ``plumbing: {work_type: PLUMB}``
        if isinstance(v, dict):
            return {k: ({"work_type": x} if isinstance(x, str) else x) for k, x in v.items()}
        return v

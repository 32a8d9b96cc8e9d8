"""Options of the ``kirona_drs`` adaptor (see README.md beside this file)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from repairs_gateway_sdk.adaptor import AdaptorConfig
from repairs_gateway_sdk.model import Priority, Trade

DEFAULT_PRIORITY_MAP: dict[Priority, str] = {
    Priority.IMMEDIATE: "I",
    Priority.EMERGENCY: "E",
    Priority.URGENT: "U",
    Priority.NORMAL: "N",
}


class KironaDRSConfig(AdaptorConfig):
    wsdl: str = Field(description="WSDL path (relative to the config dir) or URL (`...?wsdl`)")
    endpoint: str | None = Field(
        default=None, description="SOAP endpoint URL; default: the WSDL's service address"
    )
    login: str
    password: SecretStr
    contract: str = Field(description="DRS contract the orders are raised under")
    user_id: str = Field(description="DRS user id recorded on orders and bookings")
    location_id_from: Literal["property_id", "uprn"] = "property_id"
    priority_map: dict[Priority, str] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    default_sor_codes: dict[Trade, str] = Field(
        default_factory=dict,
        description="booking code per trade for jobs given as trade+size without an SoR code",
    )
    search_days: int = Field(default=28, ge=1, le=366)
    lead_time_days: int = Field(default=1, ge=0, le=60)
    window_days: int = Field(default=7, ge=1, le=7, description="DRS cuts spans to 7 days")
    concurrent_windows: int = Field(default=4, ge=1, le=16)
    cache_seconds: float = Field(default=60.0, ge=0)
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="total deadline of each call: connect, send, reply and parsing (and of "
        "loading the WSDL)",
    )
    max_reply_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=64 * 1024,
        le=512 * 1024 * 1024,
        description="largest reply (and WSDL document) accepted, in decompressed bytes",
    )
    read_attempts: int = Field(default=3, ge=1, le=5)
    query_order_number: str = Field(
        default="GW-AVAILABILITY-QUERY",
        description="primaryOrderNumber sent with availability queries (no order is created)",
    )
    send_contact_phone: bool = Field(
        default=True, description="send the resident's phone so the operative can call ahead"
    )
    workflow_type: str = Field(default="default", description="location workflowType")

    @field_validator("priority_map")
    @classmethod
    def _every_priority(cls, v: dict[Priority, str]) -> dict[Priority, str]:
        merged = dict(DEFAULT_PRIORITY_MAP)
        merged.update(v)
        return merged

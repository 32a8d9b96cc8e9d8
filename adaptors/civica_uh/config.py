"""Options of the ``civica_uh`` adaptor (see README.md beside this file)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from repairs_gateway_sdk.adaptor import AdaptorConfig
from repairs_gateway_sdk.model import Priority, PropertyKind

WSDL_DIR = Path(__file__).parent / "wsdl"
DEFAULT_REPAIR_WSDL = WSDL_DIR / "RepairService.wsdl"

# UH property hierarchy levels, by LevelDescription (summary) or LevelReference (property record).
# Levels that map to nothing (owner, non-dwellings such as garages) are listed but not bookable.
DEFAULT_LEVEL_KINDS: dict[str, PropertyKind] = {
    "estate": PropertyKind.ESTATE,
    "block": PropertyKind.COMMUNAL_BLOCK,
    "sub-block": PropertyKind.COMMUNAL_BLOCK,
    "sub block": PropertyKind.COMMUNAL_BLOCK,
    "facility": PropertyKind.COMMUNAL_AREA,
    "facilities": PropertyKind.COMMUNAL_AREA,
    "dwelling": PropertyKind.DWELLING,
    "2": PropertyKind.ESTATE,
    "3": PropertyKind.COMMUNAL_BLOCK,
    "4": PropertyKind.COMMUNAL_BLOCK,
    "5": PropertyKind.COMMUNAL_AREA,
    "7": PropertyKind.DWELLING,
}

DEFAULT_PRIORITY_CODES: dict[Priority, str] = {
    Priority.IMMEDIATE: "I",
    Priority.EMERGENCY: "E",
    Priority.URGENT: "U",
    Priority.NORMAL: "N",
}


class CivicaUHConfig(AdaptorConfig):
    property_wsdl: str = Field(
        description="PropertyService WSDL: a path (relative to the config dir) or a URL such as "
        "https://uh.example.gov.uk/UHWeb/PropertyService.svc?wsdl"
    )
    property_endpoint: str | None = Field(
        default=None, description="PropertyService address (default: the WSDL's soap:address)"
    )
    repair_wsdl: str = Field(
        default=str(DEFAULT_REPAIR_WSDL),
        description="RepairService WSDL (default: the project's own, shipped with the adaptor)",
    )
    repair_endpoint: str | None = Field(
        default=None, description="RepairService address (default: the WSDL's soap:address)"
    )
    username: str | None = Field(default=None, description="DirectUser.UserName")
    password: SecretStr | None = Field(default=None, description="DirectUser.UserPassword")
    source_system: str = Field(default="REPAIRSGW", min_length=1, max_length=50)
    user_id: int = Field(default=0, description="UH user id sent as WebRequest.UserId")
    company_code: str | None = Field(default=None, description="WebRequest.CompanyCode")
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="total deadline of each call: connect, send, reply and parsing (and of "
        "loading the WSDLs)",
    )
    max_reply_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=64 * 1024,
        le=512 * 1024 * 1024,
        description="largest reply (and WSDL document) accepted, in decompressed bytes",
    )
    read_attempts: int = Field(default=3, ge=1, le=5, description="attempts for reads")
    max_records: int = Field(default=500, ge=1, le=5000, description="MaxRecords per postcode")
    max_concurrency: int = Field(default=8, ge=1, le=64, description="parallel GetPropertyByRef")
    cache_seconds: float = Field(default=300, ge=0, description="property details kept fresh")
    stale_seconds: float = Field(
        default=86400,
        ge=0,
        description="serve the last known property/notes this long when UH is unavailable",
    )
    level_kinds: dict[str, PropertyKind] = Field(default_factory=lambda: dict(DEFAULT_LEVEL_KINDS))
    priority_codes: dict[Priority, str] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_CODES)
    )
    supplier_reference: str | None = Field(
        default=None, description="RepairTaskInfo.SupplierReference (contractor) by default"
    )
    supplier_by_sor: dict[str, str] = Field(
        default_factory=dict, description="SupplierReference per SoR code (overrides default)"
    )
    estimated_units: Decimal = Field(default=Decimal(1), gt=0)
    problem_max_chars: int = Field(default=1000, ge=20, le=8000)

    @field_validator("level_kinds")
    @classmethod
    def _lower(cls, v: dict[str, PropertyKind]) -> dict[str, PropertyKind]:
        return {k.strip().lower(): kind for k, kind in v.items()}

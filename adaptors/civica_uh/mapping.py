"""UH vocabulary <-> the gateway's: property records, eligibility, alert codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adaptors.civica_uh.client import field, items, text
from repairs_gateway_sdk.model import Property, PropertyKind

REASON_NOT_A_HOME = "this is not a home or a communal area: please report the repair by phone"
REASON_NO_MAINTENANCE = "the council does not carry out repairs at this property"
REASON_NOT_REPAIRABLE = "repairs to this property are not the council's responsibility"
REASON_NOT_ONLINE = "repairs to this property cannot be reported online: please phone"
REASON_LEASEHOLD = (
    "leasehold home: repairs inside it are the leaseholder's responsibility; report repairs "
    "to shared areas against the block"
)


@dataclass(frozen=True)
class Details:
    """What the gateway needs from a UH ``PropertyDto`` (GetPropertyByRef)."""

    reference: str
    level: str | None
    parent: str | None
    postcode: str | None
    lines: tuple[str, ...]
    repairable: bool | None
    no_maintenance: bool | None
    leasehold: bool | None
    online_repairs: bool | None
    asbestos: bool | None


def _flag(obj: Any, name: str) -> bool | None:
    value = field(obj, name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "y", "yes")


def details_from_dto(reference: str, dto: Any) -> Details:
    short = text(dto, "ShortAddress")
    lines = tuple(p.strip() for p in short.split(",") if p.strip()) if short else ()
    if not lines:
        lines = tuple(x for x in (text(dto, "PostPreamble"), text(dto, "PostDesignation")) if x)
    return Details(
        reference=text(dto, "Reference") or reference,
        level=text(dto, "LevelReference"),
        parent=text(dto, "ParentPropertyReference"),
        postcode=text(dto, "PostCodeValue"),
        lines=lines,
        repairable=_flag(dto, "Repairable"),
        no_maintenance=_flag(dto, "NoMaintenanceAllowed"),
        leasehold=_flag(dto, "Leasehold"),
        online_repairs=_flag(dto, "OnlineRepairs"),
        asbestos=_flag(dto, "Asbestos"),
    )


def kind_of(level_kinds: dict[str, PropertyKind], *levels: str | None) -> PropertyKind | None:
    for level in levels:
        if level:
            kind = level_kinds.get(level.strip().lower())
            if kind is not None:
                return kind
    return None


def eligibility(
    kind: PropertyKind | None, d: Details, tenure: str | None = None
) -> tuple[bool, str | None]:
    if kind is None:
        return False, REASON_NOT_A_HOME
    if d.no_maintenance:
        return False, REASON_NO_MAINTENANCE
    if d.repairable is False:
        return False, REASON_NOT_REPAIRABLE
    if d.online_repairs is False:
        return False, REASON_NOT_ONLINE
    leasehold = d.leasehold or (tenure is not None and "lease" in tenure.lower())
    if kind == PropertyKind.DWELLING and leasehold:
        return False, REASON_LEASEHOLD
    return True, None


def normalise_postcode(value: str | None, fallback: str) -> str:
    if not value:
        return fallback
    compact = "".join(value.split()).upper()
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact


def summary_lines(summary: Any) -> list[str]:
    lines = [text(summary, f"AddressLine{i}") for i in range(1, 5)]
    found = [x for x in lines if x]
    if not found and text(summary, "ShortAddress"):
        found = [p.strip() for p in str(text(summary, "ShortAddress")).split(",") if p.strip()]
    return found


def to_property(
    *,
    reference: str,
    lines: list[str],
    postcode: str,
    kind: PropertyKind | None,
    details: Details,
    tenure: str | None = None,
) -> Property:
    ok, reason = eligibility(kind, details, tenure)
    return Property(
        id=reference,
        address_lines=lines or [reference],
        postcode=postcode,
        kind=kind or PropertyKind.DWELLING,
        parent_id=details.parent,
        online_repairs=ok,
        ineligible_reason=reason,
    )


def _code(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = "".join(ch for ch in value.strip().upper() if ch.isalnum() or ch in "-_")
    return cleaned[:20] or None


def alert_codes(reply: Any) -> list[str]:
    """Cautionary alerts as short codes (``ALERT:<code>``); descriptions are never kept."""
    codes = []
    for alert in items(reply, "KeyObjectAlertMessages", "KeyObjectAlertMessageDto"):
        code = _code(text(alert, "Reference")) or _code(text(alert, "Category"))
        codes.append(f"ALERT:{code}" if code else "ALERT")
    return codes


def asbestos_codes(reply: Any, flagged: bool | None) -> list[str]:
    codes = []
    for hazard in items(reply, "PropertyHazardList", "PropertyHazardInfo"):
        code = _code(text(hazard, "HazardReference"))
        codes.append(f"ASB:{code}" if code else "ASB")
    if not codes and flagged:
        codes.append("ASB")
    return codes

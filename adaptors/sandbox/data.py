"""The sandbox's fixed data: magic postcodes and property ids, one for each case a screen must
handle. The table in README.md is this file, in words; tests/test_data.py checks
that they agree."""

from __future__ import annotations

from repairs_gateway_sdk.model import Property, PropertyKind

TOWN = "Sandbox Town"


def _home(pid: str, line: str, postcode: str, parent: str | None = None) -> Property:
    return Property(
        id=pid,
        uprn=None,
        address_lines=[line, TOWN],
        postcode=postcode,
        kind=PropertyKind.DWELLING,
        parent_id=parent,
    )


PROPERTIES: tuple[Property, ...] = (
    # SB1 1AA: homes that can book, in a block whose shared parts are reported on their own
    _home("SBX-0001", "Flat 1, Test House", "SB1 1AA", "SBX-B001"),
    _home("SBX-0002", "Flat 2, Test House", "SB1 1AA", "SBX-B001"),
    Property(
        id="SBX-B001",
        address_lines=["Test House (communal areas)", TOWN],
        postcode="SB1 1AA",
        kind=PropertyKind.COMMUNAL_BLOCK,
    ),
    Property(
        id="SBX-A001",
        address_lines=["Bin store, Test House", TOWN],
        postcode="SB1 1AA",
        kind=PropertyKind.COMMUNAL_AREA,
        parent_id="SBX-B001",
    ),
    # SB1 2AA: properties where repairs cannot be reported online
    Property(
        id="SBX-0201",
        address_lines=["Flat 3, Leasehold Court", TOWN],
        postcode="SB1 2AA",
        online_repairs=False,
        ineligible_reason="This flat is leasehold: contact your managing agent for repairs",
    ),
    Property(
        id="SBX-0202",
        address_lines=["4 Temporary Row", TOWN],
        postcode="SB1 2AA",
        online_repairs=False,
        ineligible_reason="Repairs to temporary accommodation are reported by phone",
    ),
    _home("SBX-0203", "5 Temporary Row", "SB1 2AA"),  # a bookable neighbour
    # SB1 3AA: no appointments at all (book without a slot where the council allows it)
    _home("SBX-0301", "1 Busy Lane", "SB1 3AA"),
    # SB1 4AA: morning slots are taken by someone else while the resident books (409)
    _home("SBX-0401", "1 Popular Street", "SB1 4AA"),
    # SB1 5AA: the council's systems are down for appointments (503) or for booking (503)
    _home("SBX-0501", "1 Outage Road", "SB1 5AA"),
    _home("SBX-0502", "2 Outage Road", "SB1 5AA"),
)

BY_ID = {p.id: p for p in PROPERTIES}
BY_POSTCODE: dict[str, list[Property]] = {}
for _p in PROPERTIES:
    BY_POSTCODE.setdefault(_p.postcode, []).append(_p)

NO_SLOTS = frozenset({"SBX-0301"})
MORNINGS_GO = frozenset({"SBX-0401"})  # a morning slot is always taken during the booking

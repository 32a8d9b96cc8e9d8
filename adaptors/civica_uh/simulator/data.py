"""The simulator's seeded dataset: Lincoln-style postcodes, houses, flats in blocks with
communal parts, a non-repairable property, leasehold homes, alerts and asbestos."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimProperty:
    reference: str
    level: str  # LevelReference: 2 estate, 3 block, 5 facility, 6 non-dwelling, 7 dwelling
    lines: list[str]
    postcode: str
    parent: str | None = None
    type_description: str = "House"
    tenure: str = "Secure"
    repairable: bool = True
    no_maintenance: bool = False
    leasehold: bool = False
    online_repairs: bool = True
    alerts: list[dict[str, str]] = field(default_factory=list)
    hazards: list[dict[str, str]] = field(default_factory=list)

    LEVELS = {
        "2": "Estate",
        "3": "Block",
        "4": "Sub-Block",
        "5": "Facility",
        "6": "Non-Dwelling",
        "7": "Dwelling",
    }

    @property
    def level_description(self) -> str:
        return self.LEVELS.get(self.level, "Unknown")

    def summary(self) -> dict[str, Any]:
        lines = (self.lines + [None, None, None, None])[:4]
        return {
            "AddressLine1": lines[0],
            "AddressLine2": lines[1],
            "AddressLine3": lines[2],
            "AddressLine4": lines[3],
            "CompanyCode": "001",
            "LevelDescription": self.level_description,
            "ParentPropertyReference": self.parent,
            "PostCodeValue": self.postcode,
            "PropertyReference": self.reference,
            "PropertyTypeDescription": self.type_description,
            "ShortAddress": ", ".join(self.lines),
            "TenureDescription": self.tenure,
        }

    def dto(self) -> dict[str, Any]:
        preamble = self.lines[0] if len(self.lines) > 2 else None
        designation = self.lines[1] if len(self.lines) > 2 else self.lines[0]
        return {
            "Asbestos": bool(self.hazards),
            "CompanyCode": "001",
            "Leasehold": self.leasehold,
            "LevelReference": self.level,
            "NoMaintenanceAllowed": self.no_maintenance,
            "OnlineRepairs": self.online_repairs,
            "ParentPropertyReference": self.parent,
            "PostCodeValue": self.postcode,
            "PostDesignation": designation,
            "PostPreamble": preamble,
            "PropertyTypeReference": self.type_description[:3].upper(),
            "Reference": self.reference,
            "Repairable": self.repairable,
            "ShortAddress": ", ".join(self.lines),
        }


def seed() -> dict[str, SimProperty]:
    props = [
        # Castle Street, LN1 1AA: houses on the Uphill estate
        SimProperty(
            "00000900",
            "2",
            ["Uphill Estate", "Lincoln"],
            "LN1 1AZ",
            type_description="Estate",
            tenure="Freehold",
        ),
        SimProperty("00012001", "7", ["1 Castle Street", "Lincoln"], "LN1 1AA", "00000900"),
        SimProperty(
            "00012003",
            "7",
            ["3 Castle Street", "Lincoln"],
            "LN1 1AA",
            "00000900",
            alerts=[
                {
                    "Category": "CAUTION",
                    "Reference": "CV02",
                    "Description": "Two operatives must attend",
                },
                {"Category": "DOG", "Reference": "DOG", "Description": "Large dog at the property"},
            ],
            hazards=[
                {
                    "HazardReference": "HZ0003",
                    "HazardDescription": "Textured coating to ceilings",
                    "HazardAdvise": "Do not drill ceilings",
                }
            ],
        ),
        SimProperty(
            "00012005",
            "7",
            ["5 Castle Street", "Lincoln"],
            "LN1 1AA",
            "00000900",
            tenure="Leasehold",
            leasehold=True,
        ),
        SimProperty(
            "00012007",
            "7",
            ["7 Castle Street", "Lincoln"],
            "LN1 1AA",
            "00000900",
            repairable=False,
            tenure="Managed",
        ),
        SimProperty(
            "00012090",
            "6",
            ["Garage 9", "Castle Street", "Lincoln"],
            "LN1 1AA",
            "00000900",
            type_description="Garage",
            tenure="Licence",
        ),
        # Minster Court, LN2 4BB: a block with communal parts, six flats
        SimProperty(
            "00000910",
            "2",
            ["Minster Estate", "Lincoln"],
            "LN2 4BZ",
            type_description="Estate",
            tenure="Freehold",
        ),
        SimProperty(
            "00020000",
            "3",
            ["Minster Court", "Eastgate", "Lincoln"],
            "LN2 4BB",
            "00000910",
            type_description="Block",
            tenure="Freehold",
            hazards=[
                {
                    "HazardReference": "HZ0101",
                    "HazardDescription": "Asbestos insulating board in risers",
                    "HazardAdvise": "Licensed contractor only",
                }
            ],
        ),
        *[
            SimProperty(
                f"0002000{n}",
                "7",
                [f"Flat {n}", "Minster Court", "Lincoln"],
                "LN2 4BB",
                "00020000",
                type_description="Flat",
            )
            for n in (1, 2, 3, 5, 6)
        ],
        SimProperty(
            "00020004",
            "7",
            ["Flat 4", "Minster Court", "Lincoln"],
            "LN2 4BB",
            "00020000",
            type_description="Flat",
            tenure="Leasehold",
            leasehold=True,
        ),
        # Bracebridge House: flats at LN5 7CC, the block's own postcode is LN5 7CD
        SimProperty(
            "00030000",
            "3",
            ["Bracebridge House", "High Street", "Lincoln"],
            "LN5 7CD",
            None,
            type_description="Block",
            tenure="Freehold",
        ),
        SimProperty(
            "00030001",
            "7",
            ["Flat 1", "Bracebridge House", "Lincoln"],
            "LN5 7CC",
            "00030000",
            type_description="Flat",
        ),
        SimProperty(
            "00030002",
            "7",
            ["Flat 2", "Bracebridge House", "Lincoln"],
            "LN5 7CC",
            "00030000",
            type_description="Flat",
            no_maintenance=True,
        ),
        SimProperty(
            "00030003",
            "7",
            ["Flat 3", "Bracebridge House", "Lincoln"],
            "LN5 7CC",
            "00030000",
            type_description="Flat",
            online_repairs=False,
            alerts=[
                {
                    "Category": "VULNERABLE",
                    "Reference": "VUL",
                    "Description": "Resident needs extra time to answer",
                }
            ],
        ),
        # Birchwood, LN6 0DD: houses
        SimProperty("00041001", "7", ["12 Birchwood Avenue", "Lincoln"], "LN6 0DD"),
        SimProperty("00041002", "7", ["14 Birchwood Avenue", "Lincoln"], "LN6 0DD"),
        # Nottingham, for a non-Lincoln postcode
        SimProperty("00050001", "7", ["2 Mansfield Road", "Nottingham"], "NG1 3FN"),
    ]
    return {p.reference: p for p in props}

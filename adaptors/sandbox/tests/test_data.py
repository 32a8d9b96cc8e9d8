"""The sandbox's data is what its README documents (through the API: tests/integration)."""

from __future__ import annotations

import re
from pathlib import Path

from adaptors.sandbox.data import BY_POSTCODE, PROPERTIES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_the_data() -> None:
    rows = [
        line.split("|")[1:4] for line in README.read_text().splitlines() if line.startswith("| `")
    ]
    documented = {
        pid: postcode.strip().strip("`")
        for postcode, ids, _ in rows
        for pid in re.findall(r"`(SBX-[A-Z0-9]+)`", ids)
    }
    assert documented == {p.id: p.postcode for p in PROPERTIES}
    assert set(BY_POSTCODE) <= {postcode.strip().strip("`") for postcode, _, _ in rows}

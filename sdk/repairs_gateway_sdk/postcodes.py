"""UK postcode normalisation: case, spaces; validity by the standard pattern."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def normalise_postcode(raw: str) -> str | None:
    """``ln11aa`` -> ``LN1 1AA``; None if it is not a UK postcode."""
    compact = re.sub(r"\s+", "", raw or "").upper()
    m = _PATTERN.match(compact)
    if not m:
        return None
    return f"{m.group(1)} {m.group(2)}"


def outward(postcode: str) -> str:
    """The district (``LN1``)."""
    return postcode.split(" ")[0]


def area(postcode: str) -> str:
    """The area letters (``LN``)."""
    return re.match(r"^[A-Z]+", postcode).group(0)  # type: ignore[union-attr]

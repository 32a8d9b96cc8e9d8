"""Human-friendly repair references: 8 characters from Crockford's alphabet (no I, L, O, U),
shown as ``XXXX-XXXX`` so they are safe to read over the phone."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_reference(text: str) -> str:
    """Accept what a resident reads out: any case, spaces, O for 0, I/L for 1."""
    cleaned = text.strip().upper().replace(" ", "").replace("-", "")
    cleaned = cleaned.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(cleaned) != 8:
        return text.strip().upper()
    return f"{cleaned[:4]}-{cleaned[4:]}"

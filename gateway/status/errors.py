"""Errors answered, by council and status code, since this process started (for the status
page): counted at the edge (gateway/api/middleware.py), process-local, no personal data
(codes only)."""

from __future__ import annotations

from collections import Counter

_counts: Counter[tuple[str, int]] = Counter()
MAX_COUNCILS = 1_000  # councils are few; the id comes from the path, so bound it anyway


def council_of(path: str) -> str | None:
    parts = path.split("/", 5)
    if len(parts) > 3 and parts[1] == "v1" and parts[2] == "councils":
        return parts[3][:64]
    if len(parts) > 2 and parts[1] == "hro":
        return parts[2][:64]
    return None


def count_error(council: str, status: int) -> None:
    """One error answered for a council served (the edge middleware calls it)."""
    _counts[(council, status)] += 1


def counts_for(council: str) -> list[tuple[int, int]]:
    return sorted(((s, n) for (c, s), n in _counts.items() if c == council), key=lambda x: -x[1])

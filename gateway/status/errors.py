"""Errors answered, by council and status code, since this process started (for the status
page): counted by a small ASGI wrapper, process-local, no personal data (codes only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from typing import Any

_counts: Counter[tuple[str, int]] = Counter()
MAX_COUNCILS = 1_000  # councils are few; the id comes from the path, so bound it anyway


def _council(path: str) -> str | None:
    parts = path.split("/", 5)
    if len(parts) > 3 and parts[1] == "v1" and parts[2] == "councils":
        return parts[3][:64]
    if len(parts) > 2 and parts[1] == "hro":
        return parts[2][:64]
    return None


def counts_for(council: str) -> list[tuple[int, int]]:
    return sorted(((s, n) for (c, s), n in _counts.items() if c == council), key=lambda x: -x[1])


class ErrorCounter:
    def __init__(self, app: Any, councils: Container[str]) -> None:
        # the runtime's live councils dict: a configuration reload updates it in place
        self.app = app
        self.councils = councils

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        council = _council(scope.get("path", "")) if scope["type"] == "http" else None
        if council is None or council not in self.councils:
            await self.app(scope, receive, send)
            return

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                _counts[(council, int(message["status"]))] += 1
            await send(message)

        await self.app(scope, receive, counted)

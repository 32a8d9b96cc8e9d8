"""Shadow comparison: a second adaptor answers the same read in the background; its answer is
normalised and compared with the primary's and the comparison recorded. The caller only ever
sees the primary's answer and latency. Bookings are never shadowed (a shadow never writes)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from gateway.storage.models import ShadowComparison
from repairs_gateway_sdk.model import AvailabilityQuery, Property, VendorSlot

if TYPE_CHECKING:
    from gateway.councils import Council
    from gateway.storage.database import Database

log = structlog.get_logger("gateway.shadow")
MAX_IN_FLIGHT = 32
MAX_EXAMPLES = 5


def compare_addresses(primary: list[Property], shadow: list[Property]) -> dict[str, Any]:
    p = {x.id: x for x in primary}
    s = {x.id: x for x in shadow}
    only_p, only_s = sorted(p.keys() - s.keys()), sorted(s.keys() - p.keys())
    differ = sorted(
        i
        for i in p.keys() & s.keys()
        if (p[i].kind, p[i].online_repairs) != (s[i].kind, s[i].online_repairs)
    )
    return {
        "only_primary": only_p[:MAX_EXAMPLES],
        "only_shadow": only_s[:MAX_EXAMPLES],
        "differ": differ[:MAX_EXAMPLES],
        "primary_count": len(p),
        "shadow_count": len(s),
    }


def compare_slots(primary: list[VendorSlot], shadow: list[VendorSlot]) -> dict[str, Any]:
    def key(s: VendorSlot) -> str:
        return f"{s.start.isoformat()}/{s.end.isoformat()}"

    p, s = {key(x) for x in primary}, {key(x) for x in shadow}
    return {
        "only_primary": sorted(p - s)[:MAX_EXAMPLES],
        "only_shadow": sorted(s - p)[:MAX_EXAMPLES],
        "primary_count": len(p),
        "shadow_count": len(s),
    }


class ShadowRunner:
    def __init__(self, database: Database, timeout: float = 30.0) -> None:
        self.database = database
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        if len(self._tasks) >= MAX_IN_FLIGHT:
            coro.close()  # shed load rather than slow the primary path
            return
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def addresses(
        self, council: Council, primary: str, shadow: str, postcode: str, answer: list[Property]
    ) -> None:
        async def run() -> None:
            try:
                other = await asyncio.wait_for(
                    council.address_source(shadow).addresses(postcode), self.timeout
                )
            except Exception as exc:  # noqa: BLE001 - a failing shadow is recorded, not raised
                await self._record(
                    council.id,
                    "addresses",
                    primary,
                    shadow,
                    False,
                    {"shadow_error": type(exc).__name__},
                )
                return
            detail = compare_addresses(answer, other)
            agreed = not (detail["only_primary"] or detail["only_shadow"] or detail["differ"])
            await self._record(council.id, "addresses", primary, shadow, agreed, detail)

        self._spawn(run())

    def appointments(
        self,
        council: Council,
        primary: str,
        shadow: str,
        query: AvailabilityQuery,
        answer: list[VendorSlot],
    ) -> None:
        async def run() -> None:
            try:
                page = await asyncio.wait_for(
                    council.scheduler(shadow).availability(query), self.timeout
                )
            except Exception as exc:  # noqa: BLE001
                await self._record(
                    council.id,
                    "appointments",
                    primary,
                    shadow,
                    False,
                    {"shadow_error": type(exc).__name__},
                )
                return
            n = min(len(answer), len(page.slots))
            detail = compare_slots(answer[:n], page.slots[:n])
            agreed = not (detail["only_primary"] or detail["only_shadow"])
            await self._record(council.id, "appointments", primary, shadow, agreed, detail)

        self._spawn(run())

    async def _record(
        self,
        council: str,
        capability: str,
        primary: str,
        shadow: str,
        agreed: bool,
        detail: dict[str, Any],
    ) -> None:
        try:
            async with self.database.transaction() as s:
                s.add(
                    ShadowComparison(
                        council=council,
                        capability=capability,
                        primary=primary,
                        shadow=shadow,
                        agreed=agreed,
                        detail=detail,
                    )
                )
        except Exception:  # noqa: BLE001
            log.warning("shadow.record_failed", council=council, capability=capability)

"""The background warm-up of lazily started adaptors: it prepares only what adaptors share,
one at a time, starts nothing, calls no council's backend, and one adaptor's failure or hang
holds up no other."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import lifecycle
from gateway.lifecycle import AdaptorStarter
from tests.gatewaykit import demo_council, running_gateway

ADAPTORS = Path(__file__).resolve().parents[2] / "adaptors"


class Fake:
    def __init__(self, name: str, log: list[str], *, prepare: str = "ok") -> None:
        self.name, self.log, self.how = name, log, prepare
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def prepare(self) -> None:
        self.log.append(self.name)
        if self.how == "fails":
            raise RuntimeError("WSDL server down")
        if self.how == "hangs":
            await asyncio.sleep(3600)


class NoPrepare:
    async def start(self) -> None:
        raise AssertionError("never started by the warm-up")


@dataclass
class FakeCouncil:
    id: str
    adaptors: dict[str, Any]
    unstarted: set[str] = field(default_factory=set)
    not_ready: dict[str, Any] = field(default_factory=dict)
    starter: Any = None


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


async def test_the_warm_up_prepares_shared_parts_and_starts_nothing() -> None:
    log: list[str] = []
    councils = [
        FakeCouncil("a", {"uh": Fake("a.uh", log), "csv": NoPrepare()}),
        FakeCouncil("b", {"uh": Fake("b.uh", log, prepare="fails"), "drs": Fake("b.drs", log)}),
        FakeCouncil("c", {"uh": Fake("c.uh", log, prepare="hangs"), "drs": Fake("c.drs", log)}),
        FakeCouncil("d", {"uh": Fake("d.uh", log)}),
    ]
    starter = AdaptorStarter(councils, timeout=0.2, warm_up_delay=0.0)  # type: ignore[arg-type]
    await starter.start(0, lazy=True)
    try:
        assert log == []  # nothing before start() returns: readiness never waits for it
        await _until(lambda: "d.uh" in log)
        # a failure and a hang (cut at the start deadline) hold up no other adaptor
        assert set(log) == {"a.uh", "b.uh", "b.drs", "c.uh", "c.drs", "d.uh"}
        assert starter.warmed == 4
        for c in councils:
            assert c.unstarted == set(c.adaptors)  # still unstarted: probes leave them alone
            assert not c.not_ready
            for a in c.adaptors.values():
                assert not getattr(a, "started", False)
    finally:
        await starter.stop()


async def test_the_warm_up_skips_adaptors_already_started_and_stops_at_its_memory_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    councils = [FakeCouncil(f"c{i}", {"uh": Fake(f"c{i}", log)}) for i in range(4)]
    starter = AdaptorStarter(councils, warm_up_delay=0.0)  # type: ignore[arg-type]
    await starter.start(0, lazy=True)
    councils[0].unstarted.clear()  # its first call came first
    rss = iter([100.0, 100.0, 10_000.0, 10_000.0])
    monkeypatch.setattr(lifecycle, "rss_mib", lambda: next(rss))
    try:
        await _until(lambda: starter._tasks[0].done())
        assert log == ["c1", "c2"]  # c0 started already; c3 over the budget
    finally:
        await starter.stop()


async def test_the_warm_up_gives_up_when_backends_fail_broadly() -> None:
    log: list[str] = []
    councils = [
        FakeCouncil(f"c{i}", {"uh": Fake(f"c{i}", log, prepare="fails")}) for i in range(20)
    ]
    starter = AdaptorStarter(councils, warm_up_delay=0.0)  # type: ignore[arg-type]
    await starter.start(0, lazy=True)
    try:
        await _until(lambda: starter._tasks[0].done())
        assert len(log) == lifecycle.WARM_UP_MAX_FAILURES  # then no more fetches
    finally:
        await starter.stop()


async def test_without_lazy_start_there_is_no_warm_up() -> None:
    log: list[str] = []
    council = FakeCouncil("a", {"uh": Fake("a", log)})
    starter = AdaptorStarter([council], warm_up_delay=0.0)  # type: ignore[arg-type]
    await starter.start(1.0)
    try:
        await asyncio.sleep(0.05)
        assert log == [] and council.adaptors["uh"].started
    finally:
        await starter.stop()


async def test_a_lazy_gateway_readies_its_wsdls_in_the_background(tmp_path: Path) -> None:
    """Councils on Civica UH + DRS (the adaptors' own shipped WSDLs, local files): after the
    warm-up their documents are parsed; no adaptor has a client, nothing was called."""
    from repairs_gateway_sdk import soap

    demo, files = demo_council()
    wsdl_dir = ADAPTORS
    councils = {}
    for cid in ("one", "two"):
        body = dict(demo)
        body["adaptors"] = {
            **demo["adaptors"],
            "uh": {
                "type": "civica_uh",
                "options": {
                    "property_wsdl": str(wsdl_dir / "civica_uh" / "wsdl" / "PropertyService.wsdl"),
                    "property_endpoint": "http://127.0.0.1:9/PropertyService.svc",
                    "repair_endpoint": "http://127.0.0.1:9/RepairService.svc",
                },
            },
        }
        councils[cid] = body
    async with running_gateway(tmp_path, councils, files, settings={"adaptor_start": "lazy"}) as gw:
        starter = gw.runtime.starter
        assert starter.warmed == 0  # ready before it begins
        await _until(lambda: bool(starter._tasks) and starter._tasks[0].done())
        for cid in councils:
            c = gw.runtime.councils[cid]
            assert "uh" in c.unstarted and c.adaptors["uh"]._http is None  # not started
        assert soap.parsed(str(wsdl_dir / "civica_uh" / "wsdl" / "PropertyService.wsdl"))
        assert starter.warmed == 4  # each council's UH and CSV diary (its shared index)

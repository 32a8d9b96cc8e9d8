"""Issue 11 item 9 through the API: a taken slot that DRS refuses vaguely answers 409, not an
outage (the adaptor's side: adaptors/kirona_drs/tests/test_vague_refusals.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adaptors.kirona_drs.tests.conftest import Sim
from adaptors.kirona_drs.tests.test_vague_refusals import VAGUE
from tests.gatewaykit import GatewayHandle, running_gateway
from tests.integration.kirona_drs.test_api import PROPERTIES, SOR, book, council, slots


@pytest.fixture
async def gw(sim: Sim, tmp_path: Path) -> AsyncIterator[GatewayHandle]:
    async with running_gateway(
        tmp_path, {"lincs": council(sim)}, files={"properties.csv": PROPERTIES, "sor.csv": SOR}
    ) as h:
        yield h


async def test_through_the_api_a_vaguely_refused_taken_slot_answers_409(
    sim: Sim, gw: GatewayHandle
) -> None:
    sim.reset(capacity=1)
    mine = (await slots(gw.client))["slots"][0]
    theirs = (await slots(gw.client, property_id="000124"))["slots"][0]
    assert theirs["start"] == mine["start"]
    assert (await book(gw.client, mine["slot_token"], "vague-a")).status_code == 201
    sim.faults(VAGUE)
    r = await book(gw.client, theirs["slot_token"], "vague-b", "000124")
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("slot-unavailable")
    await gw.drain_outbox()
    state = sim.state()
    assert state["orders"] == 1 and state["scheduled"] == 1

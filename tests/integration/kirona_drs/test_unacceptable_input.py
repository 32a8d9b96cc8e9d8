"""A request DRS can never accept (a character XML 1.0 cannot carry) is the caller's input,
not an outage: it is refused as such and never opens the scheduler's circuit."""

from __future__ import annotations

import pytest

from adaptors.kirona_drs.tests.conftest import AdaptorFactory, Sim
from adaptors.kirona_drs.tests.test_adaptor_sim import order, query
from gateway.resilience import CallStats, CircuitBreaker, Guarded
from repairs_gateway_sdk.errors import BackendCannotAccept


async def test_a_nul_in_a_description_is_refused_without_opening_the_breaker(
    sim: Sim, make_adaptor: AdaptorFactory
) -> None:
    drs = make_adaptor()
    slot = (await drs.availability(query())).slots[0]
    breaker = CircuitBreaker(threshold=3, cooldown=60)
    guarded = Guarded("c", "drs", drs, breaker, CallStats())
    for i in range(6):
        with pytest.raises(BackendCannotAccept):
            await guarded.book(order(f"RG-NUL{i}", slot, description="Tap\x00 drips"))
    assert breaker.state == "closed"
    assert sim.state()["orders"] == 0
    # the scheduler still books a proper request straight away
    conf = await guarded.book(order("RG-FINE", slot))
    assert conf.start == slot.start

"""The adaptor against the running simulator (real SOAP over HTTP on loopback)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from adaptors.civica_uh import CivicaUHAdaptor
from repairs_gateway_sdk.errors import BackendAuthFailed, BackendRejected, BackendUnavailable
from repairs_gateway_sdk.model import (
    Contact,
    JobSize,
    JobSpec,
    Priority,
    PropertyKind,
    Trade,
    WorksOrder,
)

from .conftest import Sim


def order(
    reference: str = "K7QH-3M9T", property_id: str = "00012001", sor_code: str | None = "20060020"
) -> WorksOrder:
    return WorksOrder(
        reference=reference,
        property_id=property_id,
        job=JobSpec(
            sor_code=sor_code,
            trade=Trade.PLUMBING,
            size=JobSize.SMALL,
            duration_minutes=60,
            priority=Priority.URGENT,
        ),
        description="Kitchen tap dripping constantly",
        contact=Contact(name="Sam Resident", phone="07700900123"),
    )


async def test_houses_at_a_postcode_keep_zero_padded_ids(uh: CivicaUHAdaptor) -> None:
    props = {p.id: p for p in await uh.addresses("LN1 1AA")}
    assert set(props) == {"00012001", "00012003", "00012005", "00012007", "00012090"}
    house = props["00012001"]
    assert house.address_lines == ["1 Castle Street", "Lincoln"]
    assert house.postcode == "LN1 1AA"
    assert house.kind == PropertyKind.DWELLING and house.online_repairs


async def test_ineligible_properties_say_why(uh: CivicaUHAdaptor) -> None:
    props = {p.id: p for p in await uh.addresses("LN1 1AA")}
    assert not props["00012005"].online_repairs
    assert "leasehold" in (props["00012005"].ineligible_reason or "")
    assert not props["00012007"].online_repairs  # Repairable=false
    assert not props["00012090"].online_repairs  # a garage: not a home
    lincoln = {p.id: p for p in await uh.addresses("LN5 7CC")}
    assert "does not carry out repairs" in (lincoln["00030002"].ineligible_reason or "")
    assert not lincoln["00030003"].online_repairs  # OnlineRepairs=false


async def test_flats_and_their_block_for_communal_repairs(uh: CivicaUHAdaptor) -> None:
    props = {p.id: p for p in await uh.addresses("LN2 4BB")}
    block = props["00020000"]
    assert block.kind == PropertyKind.COMMUNAL_BLOCK and block.online_repairs
    assert props["00020001"].parent_id == "00020000"
    assert props["00020001"].kind == PropertyKind.DWELLING
    # a leasehold flat cannot report inside repairs, its block can
    assert not props["00020004"].online_repairs


async def test_block_at_another_postcode_is_offered_with_its_flats(uh: CivicaUHAdaptor) -> None:
    props = {p.id: p for p in await uh.addresses("LN5 7CC")}
    block = props["00030000"]
    assert block.kind == PropertyKind.COMMUNAL_BLOCK
    assert block.postcode == "LN5 7CD"
    assert props["00030001"].parent_id == "00030000"


async def test_unknown_postcode_is_empty(uh: CivicaUHAdaptor) -> None:
    assert await uh.addresses("LN9 9ZZ") == []


async def test_get_property(uh: CivicaUHAdaptor) -> None:
    prop = await uh.get_property("00020003")
    assert prop is not None and prop.address_lines[0] == "Flat 3"
    assert prop.parent_id == "00020000"
    assert await uh.get_property("99999999") is None
    assert await uh.get_property("12003") is None  # padding matters
    assert await uh.get_property("<x>") is None


async def test_operative_notes_are_codes_only(uh: CivicaUHAdaptor) -> None:
    notes = await uh.operative_notes("00012003")
    assert notes == ["ALERT:CV02", "ALERT:DOG", "ASB:HZ0003"]
    assert all("operative" not in n.lower() for n in notes)
    assert await uh.operative_notes("00012001") == []
    assert await uh.operative_notes("00020000") == ["ASB:HZ0101"]


async def test_works_order_raised_with_sor_code_and_reference(
    sim: Sim, uh: CivicaUHAdaptor
) -> None:
    ref = await uh.raise_works_order(order())
    assert ref == "00100001"
    [raised] = sim.state()["orders"]
    assert raised["JobCode"] == "20060020"
    assert raised["RepairRequestReference"] == "K7QH-3M9T"
    assert raised["PriorityCode"] == "U"
    assert raised["PropertyReference"] == "00012001"


async def test_raise_is_idempotent_by_reference(sim: Sim, uh: CivicaUHAdaptor) -> None:
    first = await uh.raise_works_order(order())
    again = await uh.raise_works_order(order())
    assert first == again
    assert len(sim.state()["orders"]) == 1


async def test_lost_reply_then_retry_creates_exactly_one_order(
    sim: Sim, uh: CivicaUHAdaptor
) -> None:
    sim.faults(mode="drop_after", operations=["CreateRepairWithOrder"], times=1)
    with pytest.raises(BackendUnavailable):
        await uh.raise_works_order(order())
    assert len(sim.state()["orders"]) == 1  # UH did create it
    ref = await uh.raise_works_order(order())  # the outbox retries
    assert ref == sim.state()["orders"][0]["OrderReference"]
    assert len(sim.state()["orders"]) == 1


async def test_create_is_not_retried_on_connection_loss(sim: Sim, uh: CivicaUHAdaptor) -> None:
    sim.faults(mode="drop_after", operations=["CreateRepairWithOrder"])
    with pytest.raises(BackendUnavailable):
        await uh.raise_works_order(order())
    assert sim.state()["calls"]["CreateRepairWithOrder"] == 1


async def test_reads_are_retried_after_a_dropped_connection(sim: Sim, uh: CivicaUHAdaptor) -> None:
    sim.faults(mode="drop_after", operations=["GetPropertyListByPostCode"], times=1)
    assert len(await uh.addresses("LN1 1AA")) == 5
    assert sim.state()["calls"]["GetPropertyListByPostCode"] == 2


async def test_uh_refusal_of_an_order_is_rejected(uh: CivicaUHAdaptor) -> None:
    with pytest.raises(BackendRejected):
        await uh.raise_works_order(order(property_id="00030002"))  # NoMaintenanceAllowed
    with pytest.raises(BackendRejected):
        await uh.raise_works_order(order(reference="AAAA-BBBB", sor_code=None))


async def test_cancel_works_order_and_cancel_again(sim: Sim, uh: CivicaUHAdaptor) -> None:
    ref = await uh.raise_works_order(order())
    await uh.cancel_works_order(ref)
    await uh.cancel_works_order(ref)  # already cancelled: not an error
    await uh.cancel_works_order("00999999")  # never existed: not an error
    assert sim.state()["orders"][0]["StatusCode"] == "700"


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("http500", BackendUnavailable),
        ("http503", BackendUnavailable),
        ("malformed", BackendUnavailable),
        ("soap_fault", BackendUnavailable),
        ("success_false", BackendRejected),
        ("auth_fault", BackendAuthFailed),
    ],
)
async def test_faults_map_to_the_gateway_taxonomy(
    sim: Sim, uh: CivicaUHAdaptor, mode: str, error: type[Exception]
) -> None:
    await uh.start()
    sim.faults(mode=mode)
    with pytest.raises(error):
        await uh.addresses("LN1 1AA")


async def test_wrong_password_is_auth_failed(
    sim: Sim, make_adaptor: Callable[..., CivicaUHAdaptor]
) -> None:
    uh = make_adaptor(sim.options(password="wrong"))
    with pytest.raises(BackendAuthFailed):
        await uh.addresses("LN1 1AA")


async def test_timeout_is_unavailable_with_retry_after(
    sim: Sim, make_adaptor: Callable[..., CivicaUHAdaptor]
) -> None:
    uh = make_adaptor(sim.options(timeout_seconds=0.3, read_attempts=1))
    await uh.start()
    sim.faults(mode="timeout", timeout_seconds=2)
    with pytest.raises(BackendUnavailable) as caught:
        await uh.addresses("LN1 1AA")
    assert caught.value.retry_after > 0


async def test_unreachable_uh_is_unavailable(
    make_adaptor: Callable[..., CivicaUHAdaptor], sim: Sim
) -> None:
    from repairs_gateway_sdk.testing.simulators import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    uh = make_adaptor(sim.options(property_endpoint=f"{dead}/PropertyService.svc", read_attempts=2))
    with pytest.raises(BackendUnavailable):
        await uh.addresses("LN1 1AA")


async def test_replies_with_extra_elements_are_understood(sim: Sim, uh: CivicaUHAdaptor) -> None:
    sim.faults(mode="extra_elements")
    assert len(await uh.addresses("LN2 4BB")) == 7
    assert await uh.operative_notes("00012003") == ["ALERT:CV02", "ALERT:DOG", "ASB:HZ0003"]


async def test_latency_is_tolerated(sim: Sim, uh: CivicaUHAdaptor) -> None:
    sim.faults(latency_ms=50)
    assert len(await uh.addresses("LN6 0DD")) == 2


async def test_known_property_served_while_uh_is_down(sim: Sim, uh: CivicaUHAdaptor) -> None:
    await uh.addresses("LN1 1AA")
    notes = await uh.operative_notes("00012003")
    sim.faults(mode="http503")
    prop = await uh.get_property("00012003")
    assert prop is not None and prop.id == "00012003"
    assert await uh.operative_notes("00012003") == notes
    with pytest.raises(BackendUnavailable):
        await uh.addresses("LN1 1AA")  # a search is never answered from stale data


@pytest.mark.parametrize("mode", ["billion_laughs", "external_entity"])
async def test_hostile_replies_are_refused_with_bounded_memory(
    sim: Sim, uh: CivicaUHAdaptor, mode: str
) -> None:
    await uh.start()
    sim.faults(mode=mode)
    tracemalloc.start()
    try:
        with pytest.raises(BackendRejected) as caught:
            await uh.addresses("LN1 1AA")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "forbidden" in caught.value.detail
    assert peak < 5 * 1024 * 1024

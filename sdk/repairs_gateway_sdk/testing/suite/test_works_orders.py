"""WorksOrderSink: raising and cancelling works orders in a housing management system."""

from __future__ import annotations

from datetime import timedelta

import pytest

from repairs_gateway_sdk.adaptor import WorksOrderSink
from repairs_gateway_sdk.errors import BackendRejected, InvalidInput, NotFound
from repairs_gateway_sdk.model import Contact, WorksOrder
from repairs_gateway_sdk.references import new_reference
from repairs_gateway_sdk.testing.checks import Run, expect_error
from repairs_gateway_sdk.testing.spec import Fixtures
from repairs_gateway_sdk.timeutil import now


def _order(fx: Fixtures, property_id: str, reference: str | None = None) -> WorksOrder:
    start = now().replace(microsecond=0) + timedelta(days=fx.start_in_days + 1)
    return WorksOrder(
        reference=reference or new_reference(),
        property_id=property_id,
        job=fx.job.spec(),
        description="Contract test: kitchen tap dripping",
        contact=Contact(name="Contract Test", phone="07700 900123"),
        slot_start=start,
        slot_end=start + timedelta(hours=4),
    )


def _pid(fx: Fixtures) -> str:
    if not fx.property_id:
        pytest.fail("a WorksOrderSink needs fixtures.property_id (a property that exists)")
    return fx.property_id


def test_works_order_is_raised_once_per_reference(
    contract_works_order_sink: WorksOrderSink, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    order = _order(contract_fixtures, _pid(contract_fixtures))
    first = contract_run(contract_works_order_sink.raise_works_order(order))
    assert isinstance(first, str) and first.strip(), f"vendor reference {first!r} is empty"
    again = contract_run(contract_works_order_sink.raise_works_order(order))
    assert again == first, (
        f"raising the same order again gave {again!r} after {first!r}: a retry made a duplicate"
    )
    contract_run(contract_works_order_sink.cancel_works_order(first))


def test_works_order_cancel_twice_is_not_an_error(
    contract_works_order_sink: WorksOrderSink, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    ref = contract_run(
        contract_works_order_sink.raise_works_order(
            _order(contract_fixtures, _pid(contract_fixtures))
        )
    )
    contract_run(contract_works_order_sink.cancel_works_order(ref))
    contract_run(contract_works_order_sink.cancel_works_order(ref))


def test_works_order_for_unknown_property_is_a_clear_error(
    contract_works_order_sink: WorksOrderSink, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    expect_error(
        contract_run,
        contract_works_order_sink.raise_works_order(
            _order(contract_fixtures, contract_fixtures.unknown_property_id)
        ),
        (NotFound, InvalidInput, BackendRejected),
        f"a works order for unknown property {contract_fixtures.unknown_property_id!r}",
    )

"""Every network call has a timeout: against a backend that accepts connections and never
answers, each capability must give up with ``BackendUnavailable`` instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from repairs_gateway_sdk.adaptor import Adaptor, AddressSource, Scheduler, WorksOrderSink
from repairs_gateway_sdk.errors import BackendUnavailable
from repairs_gateway_sdk.model import AvailabilityQuery, Contact, WorksOrder
from repairs_gateway_sdk.references import new_reference
from repairs_gateway_sdk.testing.backend import black_hole
from repairs_gateway_sdk.testing.checks import Run, expect_error
from repairs_gateway_sdk.testing.plugin import AdaptorFactory
from repairs_gateway_sdk.testing.spec import AdaptorSpec, scheduler_property, substitute
from repairs_gateway_sdk.timeutil import today_london


def _calls(adaptor: Adaptor, spec: AdaptorSpec) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    fx = spec.fixtures
    prop = scheduler_property(spec)
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    if isinstance(adaptor, AddressSource):
        calls.append(("addresses", lambda: adaptor.addresses(fx.postcode or "LN1 1AA")))
    if isinstance(adaptor, Scheduler):
        q = AvailabilityQuery(
            property=prop,
            job=fx.job.spec(),
            start_from=today_london() + timedelta(days=fx.start_in_days),
            page_size=fx.page_size,
        )
        calls.append(("availability", lambda: adaptor.availability(q)))
    if isinstance(adaptor, WorksOrderSink):
        order = WorksOrder(
            reference=new_reference(),
            property_id=prop.id,
            job=fx.job.spec(),
            description="Contract test: timeout",
            contact=Contact(phone="07700 900123"),
        )
        calls.append(("raise_works_order", lambda: adaptor.raise_works_order(order)))
    return calls


def test_timeout_is_honoured(
    contract_spec: AdaptorSpec,
    contract_adaptor_factory: AdaptorFactory,
    contract_run: Run,
) -> None:
    tf = contract_spec.fixtures.timeout
    if tf is None:
        pytest.fail(
            "give fixtures.timeout.options (point the adaptor at {blackhole} with a short "
            "timeout), or exempt test_timeout_is_honoured with a written reason",
            pytrace=False,
        )
    with black_hole() as port:
        overrides: dict[str, Any] = substitute(
            tf.options,
            {"blackhole": f"http://127.0.0.1:{port}", "blackhole_port": str(port)},
            env=False,
        )
        adaptor = contract_adaptor_factory.build(overrides, name="contract_timeout")

        started: list[bool] = []

        async def start_then(call: Callable[[], Awaitable[Any]]) -> Any:
            if not started:
                started.append(True)
                await adaptor.start()
            return await call()

        try:
            for what, call in _calls(adaptor, contract_spec):

                async def bounded(c: Callable[[], Awaitable[Any]] = call, w: str = what) -> Any:
                    try:
                        return await asyncio.wait_for(start_then(c), tf.limit_seconds)
                    except TimeoutError:
                        pytest.fail(
                            f"{w} against a silent backend was still waiting after "
                            f"{tf.limit_seconds:g}s: is every network call given a timeout?",
                            pytrace=False,
                        )

                expect_error(
                    contract_run,
                    bounded(),
                    (BackendUnavailable,),
                    f"{what} against a backend that never answers",
                )
        finally:
            contract_run(adaptor.close())

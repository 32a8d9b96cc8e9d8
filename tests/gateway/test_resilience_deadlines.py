"""The deadline on adaptor calls (gateway/resilience.py ``Guarded``): armed when the call
first waits, it meets the same moment as one armed at the call's start, and what the task
throws in (the deadline, a caller going away) reaches the adaptor as ``await`` would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway.resilience import CallStats, CircuitBreaker, Guarded, request_deadline
from repairs_gateway_sdk.errors import BackendUnavailable, NotAttempted


class Backend:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def addresses(self, postcode: str) -> list[Any]:
        if postcode == "now":  # answers without waiting
            return ["now"]
        if postcode == "yields":
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return ["yields"]
        if postcode == "busy-then-waits":  # past its deadline before it first waits
            time.sleep(0.2)  # noqa: ASYNC251 - busy without waiting, on purpose
            await asyncio.sleep(0.05)  # shorter than the whole deadline, longer than what is left
            return ["late"]
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.seen.append("cancelled")
            if postcode == "swallows":
                return ["swallowed"]
            raise
        finally:
            self.seen.append("finally")
        return ["late"]

    async def get_property(self, property_id: str) -> Any:
        loop = asyncio.get_running_loop()
        waiting = loop.create_future()
        loop.call_later(0.01, waiting.set_result, property_id)
        return await waiting


def _guarded() -> tuple[Guarded, Backend, CircuitBreaker, CallStats]:
    backend, breaker, stats = Backend(), CircuitBreaker(threshold=100), CallStats()
    return Guarded("c", "a", backend, breaker, stats), backend, breaker, stats


async def _within(seconds: float) -> None:
    request_deadline.set(time.monotonic() + seconds)


async def test_answers_with_and_without_waiting() -> None:
    guarded, _, breaker, stats = _guarded()
    await _within(5)
    assert await guarded.addresses("now") == ["now"]
    assert await guarded.addresses("yields") == ["yields"]
    assert await guarded.get_property("p1") == "p1"
    assert breaker.failures == 0 and guarded.inflight == 0
    (stat,) = stats.take().values()  # get_property is an addresses call too
    assert (stat.calls, stat.errors) == (3, 0)


async def test_a_call_that_waits_past_its_deadline_is_stopped_and_counted() -> None:
    guarded, backend, breaker, stats = _guarded()
    await _within(0.05)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded.addresses("waits")
    assert time.monotonic() - started < 5  # stopped by the deadline, not by the 30 s wait
    assert backend.seen == ["cancelled", "finally"]  # the adaptor saw it as a cancellation
    assert breaker.failures == 1 and guarded.inflight == 0
    (stat,) = stats.take().values()
    assert (stat.calls, stat.errors) == (1, 1)


async def test_the_deadline_counts_from_the_start_of_the_call() -> None:
    """Time spent before the adaptor first waits counts: the timer armed at that wait is
    set for what is left, and one already past fires at once."""
    guarded, _, breaker, _ = _guarded()
    await _within(0.1)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded.addresses("busy-then-waits")
    assert breaker.failures == 1


async def test_a_request_out_of_time_is_not_attempted() -> None:
    guarded, backend, _, _ = _guarded()
    request_deadline.set(time.monotonic() - 1)
    with pytest.raises(NotAttempted):
        await guarded.addresses("waits")
    assert backend.seen == [] and guarded.inflight == 0  # the adaptor was never called


async def test_a_caller_that_goes_away_cancels_the_adaptor_call() -> None:
    guarded, backend, breaker, stats = _guarded()
    await _within(60)
    call = asyncio.create_task(guarded.addresses("waits"))
    await asyncio.sleep(0.02)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert backend.seen == ["cancelled", "finally"]
    assert breaker.failures == 0 and guarded.inflight == 0  # not the backend's fault
    (stat,) = stats.take().values()
    assert (stat.calls, stat.errors) == (1, 1)


async def test_an_adaptor_that_answers_despite_the_deadline_keeps_its_answer() -> None:
    """As with ``asyncio.timeout``: a cancellation the coroutine swallows is no timeout."""
    guarded, backend, breaker, _ = _guarded()
    await _within(0.05)
    assert await guarded.addresses("swallows") == ["swallowed"]
    assert backend.seen == ["cancelled", "finally"] and breaker.failures == 0


async def test_awaitables_that_are_not_coroutines_stay_under_the_deadline() -> None:
    class Futures:
        async def get_property(self, property_id: str) -> Any:  # pragma: no cover - replaced
            return None

        async def addresses(self, postcode: str) -> list[Any]:  # pragma: no cover - replaced
            return []

    backend = Futures()
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    backend.addresses = lambda postcode: never  # type: ignore[method-assign,assignment,return-value]
    guarded = Guarded("c", "a", backend, CircuitBreaker(), CallStats())
    await _within(0.05)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await guarded.addresses("x")

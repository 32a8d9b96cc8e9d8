"""Per-adaptor-instance protection: a circuit breaker, a deadline on every call (bounded by
the request's own budget), and call statistics for the migration report and metrics.

Adaptor calls go through ``Guarded``, a thin proxy the council hands out instead of the raw
adaptor. Failures that mean "the backend is not answering" (unavailable, auth failed, timeout)
count against the breaker; answers such as "slot taken" or "invalid input" do not, and
neither does a request the vendor can never accept (``BackendCannotAccept``: the caller's
input, not an outage). Each capability of an adaptor has its own breaker: an outage of works
orders in a housing system does not stop its address look-ups.

The hot path pays little for this: the deadline's timer is armed only when a call first
waits (an answer from a cache or a local diary needs none; see ``_under_deadline``), and the
metric children, breaker and statistics key of each wrapped method are found once.
"""

from __future__ import annotations

import asyncio
import time
import types
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from gateway import tracing
from repairs_gateway_sdk.adaptor import METHOD_CAPABILITY, unguarded_methods
from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendUnavailable,
    GatewayError,
    NotAttempted,
)

# Absolute monotonic deadline of the current API request (None outside requests).
request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)

CALLS = Counter(
    "gateway_adaptor_calls_total", "Adaptor calls", ["council", "adaptor", "capability", "outcome"]
)
CALL_SECONDS = Histogram(
    "gateway_adaptor_call_seconds",
    "Adaptor call latency",
    ["council", "adaptor", "capability"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
BREAKER = Gauge(
    "gateway_adaptor_circuit_open",
    "1 when the circuit of the adaptor's capability is open",
    ["council", "adaptor", "capability"],
)

LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def check(self) -> None:
        """Raise ``NotAttempted`` while the circuit is open (a half-open one lets a probe by):
        asked before work that only makes sense if the backend will be called."""
        if self.state == "open":
            left = self.cooldown - (time.monotonic() - (self.opened_at or 0))
            raise NotAttempted(
                "the backend is failing; the gateway is giving it a rest",
                retry_after=max(1, int(left) + 1),
            )

    def before(self) -> None:
        self.check()
        if self.state == "half_open":
            if self._probing:
                raise NotAttempted("the backend is being probed; try again shortly", retry_after=5)
            self._probing = True

    def release_probe(self) -> None:
        """The call ended without an answer either way (e.g. the caller went away)."""
        self._probing = False

    def success(self) -> None:
        self.failures, self.opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = time.monotonic()


@dataclass
class CallStat:
    calls: int = 0
    errors: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))

    def add(self, ms: float, error: bool) -> None:
        self.calls += 1
        self.errors += int(error)
        self.total_ms += ms
        if ms > self.max_ms:
            self.max_ms = ms
        # the first bucket whose edge is >= ms; past the last edge, the overflow bucket
        self.buckets[bisect_left(LATENCY_BUCKETS_MS, ms)] += 1


class CallStats:
    """In-memory aggregates per (council, capability, adaptor); flushed to the DB."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str, str], CallStat] = {}

    def record(self, council: str, capability: str, adaptor: str, ms: float, error: bool) -> None:
        self.record_key((council, capability, adaptor), ms, error)

    def record_key(self, key: tuple[str, str, str], ms: float, error: bool) -> None:
        """``record`` with the (council, capability, adaptor) key already made."""
        stat = self.pending.get(key)
        if stat is None:
            stat = self.pending[key] = CallStat()
        stat.add(ms, error)

    def take(self) -> dict[tuple[str, str, str], CallStat]:
        taken, self.pending = self.pending, {}
        return taken


DEFAULT_CALL_SECONDS = 60.0


def time_left(default: float = DEFAULT_CALL_SECONDS) -> float:
    deadline = request_deadline.get()
    if deadline is None:
        return default
    left = deadline - time.monotonic()
    if left <= 0:
        raise NotAttempted("the request ran out of time", retry_after=5)
    return min(default, left)


class Guarded:
    """Proxy over one adaptor instance: every capability call passes its capability's breaker,
    runs under the request's deadline and is counted. Built once per adaptor (see
    ``Council``); wrapped methods and metric children are cached, so the hot path allocates
    little. ``breaker`` is one breaker for every capability, or a function giving each
    capability its own."""

    def __init__(
        self,
        council: str,
        name: str,
        adaptor: Any,
        breaker: CircuitBreaker | Callable[[str], CircuitBreaker],
        stats: CallStats,
        *,
        pending_start: set[str] | None = None,
        start: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._council = council
        self._name = name
        self._adaptor = adaptor
        self._breaker_for = breaker if callable(breaker) else (lambda _capability: breaker)
        self._stats = stats
        self._calls: dict[str, Callable[..., Any]] = {}
        # a lazily started adaptor is started by its first call (see gateway/lifecycle.py)
        self._pending_start = pending_start if pending_start is not None else set()
        self._start = start
        self.inflight = 0  # calls running now (a reload closes a replaced adaptor after them)
        missing = unguarded_methods(type(adaptor))
        if missing:  # fail closed: a capability call must never run unguarded
            raise TypeError(
                f"adaptor {name!r} has capability methods the gateway does not know: "
                f"{', '.join(missing)} (add them to repairs_gateway_sdk.adaptor.CAPABILITIES)"
            )

    def ensure_available(self, capability: str) -> None:
        """Raise ``NotAttempted`` when ``capability``'s circuit is open."""
        self._breaker_for(capability).check()

    def __getattr__(self, attr: str) -> Any:
        call = self._calls.get(attr)
        if call is not None:
            return call
        capability = METHOD_CAPABILITY.get(attr)
        if capability is None:
            return getattr(self._adaptor, attr)
        call = self._calls[attr] = self._wrap(attr, capability)
        return call

    def _wrap(self, attr: str, capability: str) -> Callable[..., Any]:
        ok = CALLS.labels(self._council, self._name, capability, "ok")
        error = CALLS.labels(self._council, self._name, capability, "error")
        seconds = CALL_SECONDS.labels(self._council, self._name, capability)
        open_gauge = BREAKER.labels(self._council, self._name, capability)
        breaker, stats, adaptor = self._breaker_for(capability), self._stats, self._adaptor

        pending, name, start_adaptor = self._pending_start, self._name, self._start
        council, key = self._council, (self._council, capability, self._name)
        record, ok_inc, error_inc = stats.record_key, ok.inc, error.inc

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in pending and start_adaptor is not None:
                await start_adaptor()
            breaker.before()
            start = time.perf_counter()
            failed = True
            self.inflight += 1
            try:
                left = time_left()
                work = getattr(adaptor, attr)(*args, **kwargs)
                if type(work) is types.CoroutineType:
                    result = await _under_deadline(work, left, start)
                else:  # another kind of awaitable: under the deadline from the start
                    async with asyncio.timeout(left):
                        result = await work
                failed = False
                breaker.success()
                return result
            except TimeoutError:
                breaker.failure()
                raise BackendUnavailable(
                    f"adaptor {name!r} did not answer in time", retry_after=30
                ) from None
            except (BackendUnavailable, BackendAuthFailed):
                breaker.failure()
                raise
            except GatewayError:
                failed = False  # an answer (slot taken, rejected input) - the backend is up
                breaker.success()
                raise
            except Exception:
                breaker.failure()  # an adaptor bug or a library error: not a healthy answer
                raise
            except BaseException:
                breaker.release_probe()  # cancelled: never leave a half-open probe hanging
                raise
            finally:
                self.inflight -= 1
                elapsed = time.perf_counter() - start
                record(key, elapsed * 1000, failed)
                if failed:
                    error_inc()
                else:
                    ok_inc()
                seconds.observe(elapsed)
                open_gauge.set(1 if breaker.opened_at is not None else 0)

        if not tracing.ENABLED:  # decided once per wrapped method: nothing added when off
            return call
        type_name = str(getattr(adaptor, "type_name", type(adaptor).__name__))
        council_id = council

        async def traced(*args: Any, **kwargs: Any) -> Any:
            with tracing.adaptor_span(council_id, name, type_name, capability, attr) as span:
                try:
                    result = await call(*args, **kwargs)
                except GatewayError as exc:
                    tracing.failed(span, exc.slug, exc)
                    raise
                except BaseException as exc:
                    tracing.failed(span, "error", exc)
                    raise
                span.set_attribute("gateway.outcome", "ok")
                return result

        return traced


async def _under_deadline(work: Coroutine[Any, Any, Any], left: float, start: float) -> Any:
    """Run the adaptor's coroutine ``work`` under a deadline ``left`` seconds after ``start``
    (a ``time.perf_counter()`` reading), as ``async with asyncio.timeout(left)`` armed at
    ``start`` would. A timer can only interrupt a coroutine where it waits, so the timer is
    armed when ``work`` first waits: a call answered without waiting (a cached answer, a
    local diary) costs no timer, and one that waits meets the same deadline at the same
    moment. ``work``'s first step runs here; the rest runs under ``asyncio.timeout``."""
    try:
        waiting = work.send(None)
    except StopIteration as done:
        return done.value
    async with asyncio.timeout(left - (time.perf_counter() - start)):
        return await _resume(work, waiting)


@types.coroutine
def _resume(work: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """``await work`` for a coroutine already started, that gave ``waiting`` (what it waits
    on) to be handed to the task: the rest of ``yield from work``. What the task throws in
    (a cancellation) goes to ``work``."""
    while True:
        try:
            yield waiting
        except GeneratorExit:
            work.close()
            raise
        except BaseException as exc:  # handed to the coroutine, as yield from does
            try:
                waiting = work.throw(exc)
            except StopIteration as done:
                return done.value
            continue
        return (yield from work)

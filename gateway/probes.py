"""Health probes of every adaptor's backend, in the background.

Each serving adaptor's ``check_health()`` (a real, cheap call to its backend: see
sdk/repairs_gateway_sdk/adaptor.py) is run every ``interval`` seconds (jittered by a quarter
either way, so replicas and adaptors do not probe in step), under ``timeout``, with at most
``concurrency`` probes at once in the process. Results are kept with their time: /health and
/metrics show the last result and its age, never calling a backend themselves - except that an
adaptor not probed yet (just started) is probed once on demand, deduplicated with the prober's
own probe.

So a backend that goes down shows as failing within ``interval * 1.25 + timeout`` seconds (30
by default), whatever the traffic, and the probe load on a backend is one cheap call per
adaptor per replica per ``interval``.

Results carry only fixed words, the gateway's error slugs and ages: never a URL, a host or a
vendor's text. Adaptors still starting (gateway/lifecycle.py) are not probed; their starter
reports on them.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from gateway import metrics
from repairs_gateway_sdk.errors import GatewayError

if TYPE_CHECKING:
    from gateway.councils import Council

log = structlog.get_logger("gateway.probes")

INTERVAL_SECONDS = 20.0
TIMEOUT_SECONDS = 5.0
CONCURRENCY = 4
NOT_READY_POLL_SECONDS = 1.0


@dataclass
class ProbeResult:
    """The last probe of one adaptor's backend."""

    status: str = "unknown"  # pass | fail | unknown (not probed yet)
    output: str | None = None  # on failure: the gateway's error slug, "timed-out" or a type
    checked_at: float | None = None  # time.monotonic() of the last probe's end
    last_success_at: float | None = None
    duration_ms: float | None = None
    failures: int = 0  # consecutive
    probes: int = 0

    def age(self, at: float | None = None) -> float | None:
        if self.checked_at is None:
            return None
        return (time.monotonic() if at is None else at) - self.checked_at

    def success_age(self, at: float | None = None) -> float | None:
        if self.last_success_at is None:
            return None
        return (time.monotonic() if at is None else at) - self.last_success_at

    def public(self) -> dict[str, Any]:
        at = time.monotonic()
        out: dict[str, Any] = {"result": self.status}
        if self.output:
            out["output"] = self.output
        age, ok_age = self.age(at), self.success_age(at)
        out["age_seconds"] = None if age is None else int(age)
        out["last_success_age_seconds"] = None if ok_age is None else int(ok_age)
        if self.duration_ms is not None:
            out["duration_ms"] = round(self.duration_ms, 1)
        if self.failures:
            out["consecutive_failures"] = self.failures
        return out


class Prober:
    def __init__(
        self,
        councils: Iterable[Council],
        *,
        interval: float = INTERVAL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.councils = list(councils)
        self.interval = interval
        self.timeout = timeout
        self._gate = asyncio.Semaphore(concurrency)
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[ProbeResult]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        for council in self.councils:
            for name in council.adaptors:
                self._result(council.id, name)

    def _result(self, council: str, name: str) -> ProbeResult:
        result = self.results.get((council, name))
        if result is None:
            result = self.results[(council, name)] = ProbeResult()
            age = metrics.PROBE_SUCCESS_AGE.labels(council, name)
            age.set_function(functools.partial(_age_or_never, result))
            metrics.PROBE_UP.labels(council, name).set(0)
        return result

    @property
    def stale_after(self) -> float:
        """A result older than this means the prober itself is stuck."""
        return self.interval * 1.25 * 3 + self.timeout

    def result(self, council: str, name: str) -> ProbeResult | None:
        return self.results.get((council, name))

    def start(self) -> None:
        for council in self.councils:
            for name in council.adaptors:
                self._tasks.append(
                    asyncio.create_task(
                        self._loop(council, name), name=f"probe:{council.id}:{name}"
                    )
                )

    def watch(self, council: Council) -> None:
        """Probe a council added by a reload (gateway/reload.py), as if known from start-up."""
        self.councils.append(council)
        for name in council.adaptors:
            self._result(council.id, name)
            self._tasks.append(
                asyncio.create_task(self._loop(council, name), name=f"probe:{council.id}:{name}")
            )

    def forget(self, council: Council) -> None:
        """Stop probing a council a reload removed or replaced; its results go too."""
        prefix = f"probe:{council.id}:"
        keep = []
        for task in self._tasks:
            if task.get_name().startswith(prefix):
                task.cancel()
            else:
                keep.append(task)
        self._tasks[:] = keep
        self.councils = [c for c in self.councils if c is not council]
        for key in [k for k in self.results if k[0] == council.id]:
            self.results.pop(key, None)
            inflight = self._inflight.pop(key, None)
            if inflight is not None:
                inflight.cancel()

    async def stop(self) -> None:
        tasks = self._tasks + list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._tasks.clear()
        self._inflight.clear()

    async def _loop(self, council: Council, name: str) -> None:
        # the first probe comes after one (jittered) interval: /health probes a never-probed
        # adaptor on demand, and a process that starts does not call every backend at once
        await asyncio.sleep(self._next_wait())
        while True:
            if name in council.not_ready or name in council.unstarted:
                # its starter is still trying (it reports on it), or a lazily started adaptor
                # nobody has called yet: probing would start it
                await asyncio.sleep(NOT_READY_POLL_SECONDS)
                continue
            try:
                await self.probe(council, name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the prober must outlive any adaptor bug
                log.error("probe.loop_error", error_type=type(exc).__name__)
            await asyncio.sleep(self._next_wait())

    def _next_wait(self) -> float:
        return self.interval * random.uniform(0.75, 1.25)

    async def probe(self, council: Council, name: str) -> ProbeResult:
        """Probe now, or join the probe of this adaptor already running."""
        key = (council.id, name)
        task = self._inflight.get(key)
        if task is None:
            task = self._inflight[key] = asyncio.create_task(self._probe(council, name))
            task.add_done_callback(functools.partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: tuple[str, str], _task: asyncio.Task[ProbeResult]) -> None:
        self._inflight.pop(key, None)

    async def first(self, council: Council, name: str, wait: float) -> ProbeResult:
        """The adaptor's result; if it was never probed, probe it (once) and wait up to
        ``wait`` seconds for the answer."""
        result = self._result(council.id, name)
        if result.checked_at is not None or name in council.not_ready or name in council.unstarted:
            return result
        try:
            return await asyncio.wait_for(self.probe(council, name), wait)
        except TimeoutError:
            return result

    async def _probe(self, council: Council, name: str) -> ProbeResult:
        adaptor = council.adaptors[name]
        result = self._result(council.id, name)
        async with self._gate:
            start = time.monotonic()
            error: str | None = None
            try:
                async with asyncio.timeout(self.timeout):
                    await adaptor.check_health()
            except TimeoutError:
                error = "timed-out"
            except GatewayError as exc:
                error = exc.slug
            except Exception as exc:  # noqa: BLE001 - an adaptor bug is a failed probe
                error = type(exc).__name__
            end = time.monotonic()
        was = result.status
        result.probes += 1
        result.checked_at, result.duration_ms = end, (end - start) * 1000
        if error is None:
            result.status, result.output, result.failures = "pass", None, 0
            result.last_success_at = end
        else:
            result.status, result.output = "fail", error
            result.failures += 1
        metrics.PROBE_UP.labels(council.id, name).set(1 if error is None else 0)
        if result.status != was and (was != "unknown" or error is not None):
            (log.info if error is None else log.warning)(
                "probe.changed", council=council.id, adaptor=name, status=result.status, error=error
            )
        return result


def _age_or_never(result: ProbeResult) -> float:
    age = result.success_age()
    return -1.0 if age is None else age

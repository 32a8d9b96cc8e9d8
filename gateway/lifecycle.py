"""Starting adaptors without letting one of them hold up the rest, and healing those that
could not start.

Every adaptor starts at once (bounded concurrency), each under its own deadline. The gateway
waits a short grace for them, then serves: an adaptor still starting, or whose backend was down,
answers 503 "starting, retry in N s" while it is retried in the background with capped,
jittered backoff (as Home Assistant retries an integration that is not ready), and serves as
soon as its backend answers - no restart. A request for an adaptor that is not ready brings
its next attempt forward (at most once every few seconds). Shutdown cancels all of it.

Above a few councils adaptors start lazily, on their first call. A background warm-up then
readies, one adaptor at a time and at lowest priority, only what adaptors *share* (their
optional ``prepare()``: Civica UH and DRS parse their WSDLs, once per process and location),
so even the first council on a WSDL does not parse it on its first call. It never starts an
adaptor (no client, session or backend call of a council's own; probes still leave unstarted
adaptors alone), never delays readiness (it begins after a pause once the gateway serves),
paces itself after any prepare that did real work (a fetch from a WSDL server: one at a time,
a few a second at most), and stops when the process's memory reaches ``WARM_UP_MAX_RSS_MIB``
or after ``WARM_UP_MAX_FAILURES`` failed prepares in a row (backends failing broadly: no
stream of fetches to them). A prepare that fails is left for the adaptor's own start.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from repairs_gateway_sdk.adaptor import Adaptor
from repairs_gateway_sdk.errors import GatewayError

if TYPE_CHECKING:
    from gateway.councils import Council

log = structlog.get_logger("gateway.lifecycle")

START_TIMEOUT_SECONDS = 20.0  # one attempt (connect, fetch a WSDL, open a session, load files)
FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0
EARLIEST_KICK_SECONDS = 5.0  # a request may bring an attempt forward this often at most
CONCURRENCY = 32
WARM_UP_DELAY_SECONDS = 1.0  # after the gateway serves
WARM_UP_PAUSE_SECONDS = 0.2  # after a prepare that did real work (parsed or fetched)
WARM_UP_REAL_WORK_SECONDS = 0.005
WARM_UP_MAX_RSS_MIB = 768  # the platform's goal is 1 GiB a process
WARM_UP_MAX_FAILURES = 5  # in a row: backends failing broadly are left to the lazy starts


def rss_mib() -> float:
    """The process's resident memory (MiB); 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


@dataclass
class AdaptorState:
    """An adaptor that is not (yet) serving: why, and when it is tried again."""

    status: str = "starting"  # starting | retrying
    attempts: int = 0
    last_error: str | None = None  # the gateway's own error slug or exception type, no text
    # why, in plain words (gateway/diagnose.py: no vendor text, URL or host); logs and admins
    reason: str | None = None
    next_attempt_at: float | None = None  # time.monotonic()
    last_attempt_at: float = 0.0
    since: float = field(default_factory=time.monotonic)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tried: asyncio.Event = field(default_factory=asyncio.Event)  # the first attempt ended

    def retry_in(self) -> int:
        if self.next_attempt_at is None:
            return 1
        return max(1, int(self.next_attempt_at - time.monotonic() + 0.999))

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.status, "attempts": self.attempts}
        if self.status == "retrying":
            out["retry_in_seconds"] = self.retry_in()
        if self.last_error:
            out["last_error"] = self.last_error
        return out


class AdaptorStarter:
    def __init__(
        self,
        councils: Iterable[Council],
        *,
        timeout: float = START_TIMEOUT_SECONDS,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
        concurrency: int = CONCURRENCY,
        warm_up_delay: float | None = WARM_UP_DELAY_SECONDS,
    ) -> None:
        """``warm_up_delay``: seconds after a lazy start before the warm-up begins (None:
        no warm-up)."""
        self.councils = list(councils)
        self.warm_up_delay = warm_up_delay
        self.warmed = 0  # adaptors the warm-up has prepared
        self.timeout = timeout
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._gate = asyncio.Semaphore(concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._lazy: dict[tuple[str, str], asyncio.Future[None]] = {}

    async def start(self, grace: float, *, lazy: bool = False) -> None:
        """Start every adaptor in the background; wait up to ``grace`` seconds for each to
        have made its first attempt (those that failed go on retrying in the background).

        ``lazy``: start nothing now; each adaptor starts on its first call (the call waits
        for it, bounded by the start deadline), so a deployment serving hundreds of councils
        is ready at once and spends nothing on councils nobody calls."""
        if lazy:
            for council in self.councils:
                council.unstarted.update(council.adaptors)
                council.starter = self
            if self.warm_up_delay is not None:
                self._tasks.append(
                    asyncio.create_task(self._warm_up(self.warm_up_delay), name="warm-up")
                )
            return
        firsts: list[asyncio.Task[Any]] = []
        for council in self.councils:
            for name, adaptor in council.adaptors.items():
                state = council.not_ready[name] = AdaptorState()
                self._tasks.append(
                    asyncio.create_task(
                        self._run(council, name, adaptor), name=f"start:{council.id}:{name}"
                    )
                )
                firsts.append(asyncio.create_task(state.tried.wait()))
        if firsts:
            _, pending = await asyncio.wait(firsts, timeout=grace if grace > 0 else None)
            for waiter in pending:
                waiter.cancel()

    async def _warm_up(self, delay: float) -> None:
        """Prepare, one at a time, what unstarted adaptors share with others (see the module
        docstring). Best effort: any failure is left for the adaptor's own start."""
        await asyncio.sleep(delay)
        failures = 0
        for council in list(self.councils):
            for name in list(council.unstarted):
                adaptor = council.adaptors.get(name)
                if adaptor is None or name not in council.unstarted:
                    continue
                prepare = getattr(type(adaptor), "prepare", None)
                if prepare is None or prepare is Adaptor.prepare:  # the SDK's no-op
                    continue
                if rss_mib() >= WARM_UP_MAX_RSS_MIB:
                    log.info("adaptor.warm_up_stopped", reason="memory", prepared=self.warmed)
                    return
                began = time.monotonic()
                try:
                    async with asyncio.timeout(self.timeout):
                        await adaptor.prepare()
                    self.warmed += 1
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - its own start will say why
                    log.debug(
                        "adaptor.warm_up_failed",
                        council=council.id,
                        adaptor=name,
                        error=type(exc).__name__,
                    )
                    failures += 1
                    if failures >= WARM_UP_MAX_FAILURES:
                        log.info("adaptor.warm_up_stopped", reason="failures", prepared=self.warmed)
                        return
                # the lowest priority: requests first; after real work, a pause
                took = time.monotonic() - began
                await asyncio.sleep(
                    WARM_UP_PAUSE_SECONDS if took > WARM_UP_REAL_WORK_SECONDS else 0
                )
        log.info("adaptor.warm_up_done", prepared=self.warmed)

    async def _attempt(
        self, council: Council, name: str, adaptor: Any, state: AdaptorState | None = None
    ) -> str | None:
        """One bounded start; None when it worked, else the reason (no vendor text). The
        plain-words reason goes to ``state.reason``."""
        from gateway.diagnose import reason

        async with self._gate:
            try:
                async with asyncio.timeout(self.timeout):
                    await adaptor.start()
                return None
            except TimeoutError as exc:
                if state is not None:
                    state.reason = reason(exc, self.timeout)
                return "timed-out"
            except GatewayError as exc:
                if state is not None:
                    state.reason = reason(exc)
                return exc.slug
            except Exception as exc:  # noqa: BLE001 - an adaptor bug must not stop the others
                if state is not None:
                    state.reason = reason(exc)
                return type(exc).__name__

    async def _run(self, council: Council, name: str, adaptor: Any) -> None:
        state = council.not_ready[name]
        delay = self.first_retry
        while True:
            state.attempts += 1
            state.last_attempt_at = time.monotonic()
            error = await self._attempt(council, name, adaptor, state)
            state.tried.set()
            if error is None:
                council.not_ready.pop(name, None)
                if state.attempts > 1:
                    log.info(
                        "adaptor.started", council=council.id, adaptor=name, attempts=state.attempts
                    )
                return
            wait = random.uniform(delay / 2, delay)
            state.status, state.last_error = "retrying", error
            state.next_attempt_at = time.monotonic() + wait
            log.error(
                "adaptor.start_failed",
                council=council.id,
                adaptor=name,
                error=error,
                reason=state.reason,
                attempts=state.attempts,
                retry_in_seconds=round(wait, 1),
            )
            state.wake.clear()
            try:
                await asyncio.wait_for(state.wake.wait(), wait)
            except TimeoutError:
                pass
            delay = min(self.max_retry, delay * 2)

    async def ensure_started(self, council: Council, name: str) -> None:
        """Start a lazily started adaptor on its first call (one start however many callers
        arrive at once). A failed start goes on as an eager one would: retried in the
        background, and this caller is told NotAttempted with the reason."""
        if name not in council.unstarted:
            return
        starting = self._lazy.get((council.id, name))
        if starting is None:
            starting = self._lazy[(council.id, name)] = asyncio.ensure_future(
                self._first_lazy_start(council, name)
            )
        await asyncio.shield(starting)

    async def _first_lazy_start(self, council: Council, name: str) -> None:
        adaptor = council.adaptors[name]
        state = AdaptorState(attempts=1, last_attempt_at=time.monotonic())
        error = await self._attempt(council, name, adaptor, state)
        council.unstarted.discard(name)
        self._lazy.pop((council.id, name), None)
        if error is None:
            return
        # as if it had failed at start-up: retried in the background from now on
        state.status, state.last_error = "retrying", error
        state.next_attempt_at = time.monotonic() + self.first_retry
        council.not_ready[name] = state
        state.tried.set()
        self._tasks.append(
            asyncio.create_task(
                self._retry(council, name, adaptor, state), name=f"start:{council.id}:{name}"
            )
        )
        from repairs_gateway_sdk.errors import NotAttempted

        raise NotAttempted(
            f"adaptor {name!r} could not start ({error}); retry in {state.retry_in()} s",
            retry_after=state.retry_in(),
        )

    async def _retry(self, council: Council, name: str, adaptor: Any, state: AdaptorState) -> None:
        await asyncio.sleep(max(0.0, (state.next_attempt_at or 0) - time.monotonic()))
        await self._run(council, name, adaptor)

    @staticmethod
    def kick(state: AdaptorState) -> None:
        """A caller wants this adaptor: try again soon, but not more often than every few s."""
        if state.status == "retrying" and (
            time.monotonic() - state.last_attempt_at >= EARLIEST_KICK_SECONDS
        ):
            state.wake.set()

    def forget(self, council_id: str) -> None:
        """Stop starting (or retrying) one council's adaptors: a configuration reload
        replaced or removed the council (gateway/reload.py closes its adaptors)."""
        prefix = f"start:{council_id}:"
        keep: list[asyncio.Task[None]] = []
        for task in self._tasks:
            if task.get_name().startswith(prefix):
                task.cancel()
            else:
                keep.append(task)
        self._tasks = keep
        self.councils = [c for c in self.councils if c.id != council_id]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks.clear()

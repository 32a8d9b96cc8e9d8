"""Reloading council configuration without a restart (SIGHUP, or ``POST /v1/admin/reload``).

A reload reads the config directory as ``serve`` does (``load_councils``) and checks the files
each changed council names as ``repairs-gateway check`` does (property files, WSDLs). Any fatal
problem refuses the whole reload: the problems are logged (and answered on the admin call) and
the running configuration is kept, untouched.

Otherwise each council is, against the running one:

- unchanged (same configuration after environment substitution, same mapping table, triage
  table and adaptor files): kept as it is - its adaptor instances, breakers and probes;
- updated (only what no adaptor depends on changed: the SoR table, routes, triage, CORS,
  notifications, page size...): the running council object takes the new configuration and
  tables in place, keeping its adaptors and breakers;
- replaced (an adaptor's type, options or a file it reads changed) or added: new adaptors,
  started through an ``AdaptorStarter`` (the start-up grace applies) *before* the swap, so
  the council serves at once;
- removed: no longer served.

The swap is one synchronous step on the event loop: the one councils dict that the runtime,
``Gateway``, ``Bookings`` (through the gateway) and the error counter share is updated in place;
the CORS middleware, notifiers and prober are told. Adaptors of replaced and removed councils
are closed once no request that started before the swap is still running and no call on
them is in flight (at most the request budget plus ``reload_grace_seconds`` later): requests
running during a reload finish on the configuration they started with.

Per process: each replica reloads on its own SIGHUP or admin call.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from gateway.config import ConfigError, ConfigProblem
from gateway.councils import Council, load_councils
from gateway.lifecycle import AdaptorStarter

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = structlog.get_logger("gateway.reload")
POLL_SECONDS = 0.05


class RequestsInFlight:
    """Requests running now, by the configuration generation they started under."""

    def __init__(self) -> None:
        self.generation = 0
        self.counts: dict[int, int] = {}

    def enter(self) -> int:
        """A request starts (the edge middleware, gateway/api/middleware.py): its generation."""
        gen = self.generation
        counts = self.counts
        counts[gen] = counts.get(gen, 0) + 1
        return gen

    def leave(self, gen: int) -> None:
        counts = self.counts
        left = counts[gen] - 1
        if left:
            counts[gen] = left
        else:
            del counts[gen]

    def started_before(self, generation: int) -> int:
        """Requests still running that started under ``generation`` or earlier."""
        return sum(n for g, n in self.counts.items() if g <= generation)


@dataclass
class ReloadResult:
    outcome: str  # reloaded | refused | failed
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)  # fatal: why it was refused
    warnings: list[str] = field(default_factory=list)
    # "council:adaptor" -> its start state, for new adaptors not serving yet
    not_ready: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "reloaded"

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "added": self.added,
            "replaced": self.replaced,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
        }
        if self.problems:
            out["problems"] = self.problems
        if self.warnings:
            out["warnings"] = self.warnings
        if self.not_ready:
            out["not_ready"] = self.not_ready
        return out


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def adaptor_files(council: Council) -> list[tuple[str, str, Path]]:
    from gateway.checks import file_options

    return file_options(council)


def _adaptor_key(council: Council) -> tuple[Any, ...]:
    """What the council's adaptors depend on: their entries (after environment substitution)
    and the state of every local file their options name."""
    files = tuple((str(p), _stat(p)) for _, _, p in adaptor_files(council))
    return council.config.adaptors, files, tuple(sorted(council.broken.items()))


def _triage_key(council: Council) -> tuple[int, int] | None:
    hro = council.config.hro
    if hro is None:
        return None
    return _stat((council.loaded.path.parent / hro.triage).resolve())


def _same_council(new: Council, old: Council) -> bool:
    return (
        new.config == old.config
        and new.table is old.table  # tables are shared per file and version (councils.py)
        and _triage_key(new) == _triage_key(old)
    )


def file_problems(council: Council) -> list[ConfigProblem]:
    """What ``repairs-gateway check`` finds in the files the council's adaptors name."""
    from gateway.checks import check_adaptor_files

    problems, _ = check_adaptor_files(council)
    return problems


async def close_adaptors(adaptors: Iterable[tuple[str, str, Any]]) -> None:
    for council_id, name, adaptor in adaptors:
        try:
            await adaptor.close()
        except Exception:  # noqa: BLE001 - closing replaced adaptors; keep closing the others
            log.warning("adaptor.close_failed", council=council_id, adaptor=name)


def _adaptors_of(councils: Iterable[Council]) -> list[tuple[str, str, Any]]:
    return [(c.id, n, a) for c in councils for n, a in c.adaptors.items()]


class Reloader:
    """Reloads one runtime's councils; one reload at a time."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.requests = RequestsInFlight()
        self.on_sighup = False  # set by `serve` and `worker` (cli.py)
        # told the new {council: cors_origins} after each reload (gateway/api/middleware.py)
        self.cors_hooks: list[Callable[[dict[str, list[str]]], None]] = []
        self.last: ReloadResult | None = None
        self._lock: asyncio.Lock | None = None
        self._starters: list[AdaptorStarter] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self._retired: list[tuple[str, str, Any]] = []  # waiting to be closed
        self._hup: asyncio.Task[ReloadResult] | None = None
        self._hup_again = False
        self._signal_loop: asyncio.AbstractEventLoop | None = None

    # -- SIGHUP ---------------------------------------------------------------------------
    def start(self) -> None:
        if not self.on_sighup:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._signal_loop = loop

    def _on_sighup(self) -> None:
        log.info("config.reload_requested", via="sighup")
        if self._hup is not None and not self._hup.done():
            self._hup_again = True  # one more after the running one: the files may have moved on
            return
        self._hup = asyncio.create_task(self._sighup_reload())

    async def _sighup_reload(self) -> ReloadResult:
        while True:
            self._hup_again = False
            result = await self.reload(via="sighup")
            if not self._hup_again:
                return result

    async def stop(self) -> None:
        if self._signal_loop is not None:
            with contextlib.suppress(Exception):
                self._signal_loop.remove_signal_handler(signal.SIGHUP)
            self._signal_loop = None
        if self._hup is not None:
            self._hup.cancel()
            with contextlib.suppress(BaseException):
                await self._hup
        for task in self._retiring:
            task.cancel()
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=5)
        self._retiring.clear()
        for starter in self._starters:
            await starter.stop()
        self._starters.clear()
        retired, self._retired = self._retired, []
        await close_adaptors(retired)

    # -- the reload -----------------------------------------------------------------------
    async def reload(self, *, via: str = "admin") -> ReloadResult:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                result = await self._reload()
            except Exception as exc:  # noqa: BLE001 - a failed reload keeps the running config
                log.error("config.reload_failed", via=via, error_type=type(exc).__name__)
                result = ReloadResult("failed", problems=[f"reload failed: {type(exc).__name__}"])
            self.last = result
            if result.ok:
                log.info(
                    "config.reloaded",
                    via=via,
                    added=result.added,
                    replaced=result.replaced,
                    updated=result.updated,
                    removed=result.removed,
                    unchanged=result.unchanged,
                    warnings=len(result.warnings),
                )
            elif result.outcome == "refused":
                log.error(
                    "config.reload_refused", via=via, problems=result.problems, kept="running"
                )
            return result

    def _load(self) -> tuple[dict[str, Council], list[ConfigProblem]]:
        s = self.rt.settings
        try:
            return load_councils(s.config_dir, s.data_dir, self.rt.database)
        except ConfigError as exc:
            return {}, exc.problems

    async def _reload(self) -> ReloadResult:
        rt, s = self.rt, self.rt.settings
        loaded, problems = await asyncio.to_thread(self._load)
        current = rt.councils
        added: list[Council] = []
        replaced: list[Council] = []
        updated: list[tuple[Council, Council]] = []  # (new, running)
        unchanged: list[Council] = []
        for cid, new in loaded.items():
            old = current.get(cid)
            if old is None:
                added.append(new)
            elif _adaptor_key(new) != _adaptor_key(old):
                replaced.append(new)
            elif not _same_council(new, old):
                updated.append((new, old))
            else:
                unchanged.append(new)
        fresh = added + replaced
        for council in fresh:  # as `check` would: the files their adaptors read
            problems.extend(await asyncio.to_thread(file_problems, council))
        fatal = [p for p in problems if p.fatal]
        result = ReloadResult(
            "refused" if fatal else "reloaded",
            warnings=[str(p) for p in problems if not p.fatal],
            problems=[str(p) for p in fatal],
        )
        # adaptors built for councils that keep their running ones were never started
        discard = [*unchanged, *(new for new, _ in updated)]
        if fatal:
            await close_adaptors(_adaptors_of([*discard, *fresh]))
            return result
        await close_adaptors(_adaptors_of(discard))
        removed = [cid for cid in current if cid not in loaded]

        # start the new adaptors before they serve (as at start-up: a grace, then retries)
        for council in fresh:
            council.stats = rt.stats
            council.breaker_threshold = s.breaker_threshold
            council.breaker_cooldown = s.breaker_cooldown_seconds
        if fresh:
            starter = AdaptorStarter(fresh, timeout=s.adaptor_start_timeout_seconds)
            self._starters.append(starter)
            await starter.start(s.adaptor_start_grace_seconds, lazy=s.lazy_start(loaded))

        # -- the swap: no await from here to the end of the block -------------------------
        retiring = [current[c.id] for c in replaced] + [current[cid] for cid in removed]
        for cid in removed:
            del current[cid]
        for new, old in updated:
            old.loaded, old.table, old.triage = new.loaded, new.table, new.triage
        for council in fresh:
            current[council.id] = council
        generation = self.requests.generation
        self.requests.generation += 1
        self._after_swap(retiring, fresh, [old for _, old in updated])
        # -- end of the swap --------------------------------------------------------------

        if retiring:
            task = asyncio.create_task(self._retire(retiring, generation))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        result.added = sorted(c.id for c in added)
        result.replaced = sorted(c.id for c in replaced)
        result.updated = sorted(old.id for _, old in updated)
        result.removed = sorted(removed)
        result.unchanged = len(unchanged)
        result.not_ready = {
            f"{c.id}:{name}": state.public() for c in fresh for name, state in c.not_ready.items()
        }
        return result

    def _after_swap(
        self, retiring: list[Council], fresh: list[Council], updated: list[Council]
    ) -> None:
        """Tell everything that keeps a per-council view (synchronous: part of the swap)."""
        rt = self.rt
        for council in retiring:
            rt.starter.forget(council.id)
            for starter in self._starters:
                starter.forget(council.id)
            rt.prober.forget(council)
        for council in fresh:
            rt.prober.watch(council)
        notifiers = rt.bookings.notifications.notifiers
        for council in retiring:
            if council.id not in rt.councils:
                notifiers.pop(council.id, None)
        for council in [*fresh, *updated]:
            config = council.config.notifications
            if config is None:
                notifiers.pop(council.id, None)
            elif council.id not in notifiers or notifiers[council.id].config != config:
                from gateway.notify import Notifier

                notifiers[council.id] = Notifier(config)
        origins = {c.id: c.config.cors_origins for c in rt.councils.values()}
        for hook in self.cors_hooks:
            hook(origins)

    async def _retire(self, councils: list[Council], generation: int) -> None:
        """Close replaced adaptors once the requests that may hold them have finished and no
        call on them is in flight (bounded: the request budget plus the grace)."""
        s = self.rt.settings
        adaptors = _adaptors_of(councils)
        self._retired.extend(adaptors)
        deadline = time.monotonic() + s.request_budget_seconds + s.reload_grace_seconds
        while time.monotonic() < deadline:
            busy = self.requests.started_before(generation) or any(
                g.inflight for c in councils for g in c.guards.values()
            )
            if not busy:
                break
            await asyncio.sleep(POLL_SECONDS)
        self._retired = [a for a in self._retired if a not in adaptors]
        await close_adaptors(adaptors)
        log.info("config.adaptors_closed", councils=sorted({c.id for c in councils}))

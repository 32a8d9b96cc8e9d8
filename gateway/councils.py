"""Council runtimes: each council's validated configuration, mapping table and live adaptors.

Loading validates everything and collects every problem (file, line, key) before start-up, so
``repairs-gateway check`` and ``serve`` report the same things.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from gateway.config import (
    ConfigError,
    ConfigProblem,
    LoadedCouncil,
    council_files,
    load_council_file,
)
from gateway.lifecycle import AdaptorStarter, AdaptorState
from gateway.plugins import discover
from gateway.resilience import CallStats, CircuitBreaker, Guarded
from gateway.routing import RouteRequest, choose
from gateway.storage.adaptor_store import NamespacedStore
from gateway.storage.database import Database
from mappings.engine import MappingTableError, SorTable, load_table
from repairs_gateway_sdk.adaptor import (
    CAPABILITIES,
    ROUTABLE,
    Adaptor,
    AdaptorContext,
    AddressSource,
    AttachmentSink,
    Scheduler,
    WorksOrderSink,
)
from repairs_gateway_sdk.errors import BackendUnavailable, InvalidInput, NotAttempted, NotFound

CAPABILITY_BASES: dict[str, type[Adaptor]] = {name: CAPABILITIES[name].base for name in ROUTABLE}


@dataclass
class Council:
    id: str
    loaded: LoadedCouncil
    table: SorTable
    adaptors: dict[str, Adaptor] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # adaptor name -> why it is unusable
    # adaptors still starting or retrying their start (see gateway/lifecycle.py)
    not_ready: dict[str, AdaptorState] = field(default_factory=dict)
    # adaptors started lazily that have not had their first call yet
    unstarted: set[str] = field(default_factory=set)
    starter: AdaptorStarter | None = None
    # adaptor name -> capability -> its breaker
    breakers: dict[str, dict[str, CircuitBreaker]] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)
    guards: dict[str, Guarded] = field(default_factory=dict)
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    triage: Any = None  # mappings.triage.TriageSet when the council has an hro: block

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.loaded.config

    def adaptor(self, name: str) -> Adaptor:
        if self.not_ready:
            state = self.not_ready.get(name)
            if state is not None:
                AdaptorStarter.kick(state)
                why = f" ({state.last_error})" if state.last_error else ""
                raise NotAttempted(
                    f"adaptor {name!r} is {state.status}{why}; retry in {state.retry_in()} s",
                    retry_after=state.retry_in(),
                )
        if name in self.broken:
            raise BackendUnavailable(
                f"adaptor {name!r} is not configured correctly", retry_after=300
            )
        try:
            return self.adaptors[name]
        except KeyError:
            raise NotFound(f"adaptor {name!r} is not configured") from None

    def route(self, req: RouteRequest) -> str | None:
        route = getattr(self.config.routes, req.capability)
        if route is None and req.capability == "bookings":
            route = self.config.routes.appointments
        if route is None:
            return None
        return choose(route, req)

    def shadow_for(self, capability: str) -> str | None:
        route = getattr(self.config.routes, capability)
        return route.shadow if route is not None else None

    def breaker(self, name: str, capability: str) -> CircuitBreaker:
        per_capability = self.breakers.setdefault(name, {})
        b = per_capability.get(capability)
        if b is None:
            b = per_capability[capability] = CircuitBreaker(
                self.breaker_threshold, self.breaker_cooldown
            )
        return b

    def ensure_available(self, name: str, capability: str) -> None:
        """Raise ``NotAttempted`` when ``name``'s circuit for ``capability`` is open."""
        self.breaker(name, capability).check()

    def _guarded(self, name: str, base: type[Adaptor], what: str) -> Any:
        a = self.adaptor(name)
        if not isinstance(a, base):
            raise InvalidInput(f"adaptor {name!r} is not {what}")
        guard = self.guards.get(name)
        if guard is None:
            guard = self.guards[name] = Guarded(
                self.id,
                name,
                a,
                lambda cap: self.breaker(name, cap),
                self.stats,
                pending_start=self.unstarted,
                start=lambda: self._start_lazily(name),
            )
        return guard

    async def _start_lazily(self, name: str) -> None:
        if self.starter is not None:
            await self.starter.ensure_started(self, name)

    def address_source(self, name: str) -> AddressSource:
        return cast(AddressSource, self._guarded(name, AddressSource, "an address source"))

    def scheduler(self, name: str) -> Scheduler:
        return cast(Scheduler, self._guarded(name, Scheduler, "a scheduler"))

    def attachment_sink(self, name: str) -> AttachmentSink | None:
        """The works-order adaptor ``name`` as an attachment sink (guarded), or None when it
        takes no attachments."""
        if not isinstance(self.adaptors.get(name), AttachmentSink):
            return None
        return cast(AttachmentSink, self._guarded(name, AttachmentSink, "an attachment sink"))

    def works_order_sink(self, name: str) -> WorksOrderSink:
        return cast(WorksOrderSink, self._guarded(name, WorksOrderSink, "a works-order sink"))


_TABLES: dict[tuple[Path, int, int], SorTable] = {}


def _shared_table(path: Path) -> SorTable:
    """A mapping table loaded once per file and version, shared by every council that uses
    it (tables are read only once loaded): hundreds of councils on one standard table cost
    one table's memory."""
    st = path.stat()
    key = (path, st.st_mtime_ns, st.st_size)
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) > 1024:
            _TABLES.clear()
        table = _TABLES[key] = load_table(path)
    return table


def build_council(
    loaded: LoadedCouncil, data_dir: Path, database: Database | None
) -> tuple[Council, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    fname = str(loaded.path)
    config = loaded.config
    table = SorTable({}, "<none>")
    table_path = (loaded.path.parent / config.mappings).resolve()
    try:
        table = _shared_table(table_path)
    except FileNotFoundError:
        problems.append(
            ConfigProblem(
                fname,
                loaded.line_of("mappings"),
                "mappings",
                f"mapping table {table_path} not found",
            )
        )
    except MappingTableError as exc:
        problems.extend(
            ConfigProblem(e.source, e.line, e.column or "", e.message) for e in exc.errors
        )
    council = Council(loaded.id, loaded, table)
    if config.hro is not None:
        from gateway.hro.config import load_hro

        council.triage, hro_problems = load_hro(loaded, table)
        problems.extend(hro_problems)
    registry = discover()
    for name, entry in config.adaptors.items():
        cls = registry.types.get(entry.type)
        if cls is None:
            why = registry.errors.get(entry.type)
            msg = (
                f"adaptor type {entry.type!r} failed to load: {why}"
                if why
                else f"unknown adaptor type {entry.type!r} (installed: "
                f"{', '.join(sorted(registry.types)) or 'none'})"
            )
            problems.append(
                ConfigProblem(
                    fname,
                    loaded.line_of("adaptors", name, "type"),
                    f"adaptors.{name}.type",
                    msg,
                    fatal=why is None,
                )
            )
            council.broken[name] = msg
            continue
        try:
            options = cls.Config.model_validate(entry.options)
        except ValidationError as exc:
            from gateway.confighints import pydantic_message

            for err in exc.errors():
                loc = ("adaptors", name, "options", *err["loc"])
                problems.append(
                    ConfigProblem(
                        fname,
                        loaded.line_of(*loc),
                        ".".join(map(str, loc)),
                        pydantic_message(err, cls.Config, tuple(err["loc"])),
                    )
                )
            council.broken[name] = "invalid options"
            continue
        ctx = AdaptorContext(
            council=loaded.id,
            name=name,
            config_dir=loaded.path.parent,
            data_dir=data_dir,
            store=(
                NamespacedStore(database, cls.store_namespace)
                if database is not None and cls.store_namespace
                else None
            ),
        )
        council.adaptors[name] = cls(options, ctx)
    for cap, base in CAPABILITY_BASES.items():
        route = getattr(config.routes, cap)
        if route is None:
            continue
        names = {route.default, *(r.use for r in route.rules)}
        if route.shadow:
            names.add(route.shadow)
        for n in sorted(names):
            a = council.adaptors.get(n)
            if a is not None and not isinstance(a, base):
                problems.append(
                    ConfigProblem(
                        fname,
                        loaded.line_of("routes", cap),
                        f"routes.{cap}",
                        f"adaptor {n!r} ({a.type_name}) cannot serve {cap}",
                    )
                )
    return council, problems


def load_councils(
    config_dir: Path, data_dir: Path, database: Database | None = None
) -> tuple[dict[str, Council], list[ConfigProblem]]:
    councils: dict[str, Council] = {}
    problems: list[ConfigProblem] = []
    for path in council_files(config_dir):
        try:
            loaded = load_council_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        council, council_problems = build_council(loaded, data_dir, database)
        problems.extend(council_problems)
        councils[council.id] = council
    if not councils and not problems:
        problems.append(ConfigProblem(str(config_dir), None, "", "no council *.yaml files found"))
    return councils, problems

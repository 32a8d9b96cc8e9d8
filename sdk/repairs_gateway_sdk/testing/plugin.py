"""The pytest plugin of the adaptor contract kit (``repairs-gateway-sdk[testing]``).

Registered through the SDK's ``pytest11`` entry point, so installing the SDK with its testing
extra is enough (no gateway needed). It does nothing until one of its options is given:

- ``--adaptor TYPE`` runs the structural checks for the adaptor registered as TYPE;
- ``--adaptor-config FILE`` adds the behavioural checks per capability, against the backend
  (or simulator) the file describes and starts.

When no test paths are given on the command line, the suite is collected instead of the
project's own tests.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from repairs_gateway_sdk.adaptor import (
    Adaptor,
    AdaptorContext,
    AddressSource,
    Scheduler,
    WorksOrderSink,
)
from repairs_gateway_sdk.testing.backend import BackendFailed, RunningBackend, running_backend
from repairs_gateway_sdk.testing.spec import (
    AdaptorSpec,
    Fixtures,
    SpecError,
    deep_merge,
    load_spec,
    substitute,
)
from repairs_gateway_sdk.testing.structure import load_entry_point

HERE = Path(__file__).resolve().parent
ADAPTOR_SUITE = HERE / "suite"

T = TypeVar("T")
SPEC_KEY = pytest.StashKey[AdaptorSpec | None]()
SPEC_PATH_KEY = pytest.StashKey[Path | None]()
SUITES_KEY = pytest.StashKey[bool]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from repairs_gateway_sdk.testing import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("repairs-gateway-contract", "repairs gateway contract test kit")
    g.addoption("--adaptor", metavar="TYPE", help="adaptor type (entry-point name) to check")
    g.addoption(
        "--adaptor-config",
        metavar="FILE",
        help="contract configuration (YAML: type, options, fixtures, backend)",
    )


def option(config: pytest.Config, name: str) -> Any:
    return config.getoption(name.lstrip("-").replace("-", "_"), default=None)


def add_suites(config: pytest.Config, suites: list[Path]) -> None:
    """Collect ``suites``: beside the paths given on the command line, or instead of the
    project's own tests when none were given (several plugins may each add theirs)."""
    if not suites:
        return
    if config.args_source == pytest.Config.ArgsSource.ARGS or config.stash.get(SUITES_KEY, False):
        given = {Path(a.split("::")[0]).resolve() for a in config.args}
        config.args.extend(str(s) for s in suites if s not in given)
    else:
        config.args[:] = [str(s) for s in suites]
        config.stash[SUITES_KEY] = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract_adaptor: adaptor conformance suite")
    spec_file = option(config, "--adaptor_config")
    spec: AdaptorSpec | None = None
    path: Path | None = None
    if spec_file:
        path = Path(spec_file).resolve()
        try:
            spec = load_spec(path)
        except SpecError as exc:
            raise pytest.UsageError(str(exc)) from None
        wanted = option(config, "--adaptor")
        if wanted and wanted != spec.type:
            raise pytest.UsageError(
                f"--adaptor {wanted} does not match type {spec.type!r} in {spec_file}"
            )
    config.stash[SPEC_KEY] = spec
    config.stash[SPEC_PATH_KEY] = path
    if option(config, "--adaptor") or spec is not None:
        add_suites(config, [ADAPTOR_SUITE])


def _in(item: pytest.Item, folder: Path) -> bool:
    return folder in Path(str(item.path)).resolve().parents


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    spec = config.stash.get(SPEC_KEY, None)
    suite_items = [i for i in items if _in(i, ADAPTOR_SUITE)]
    for item in suite_items:
        item.add_marker(pytest.mark.contract_adaptor)
    if spec is None:
        return
    names = {getattr(i, "originalname", i.name) for i in suite_items}
    whole_suite = str(ADAPTOR_SUITE) in config.args
    unknown = sorted(set(spec.exemptions) - names)
    if unknown and whole_suite:
        raise pytest.UsageError(
            f"capabilities_exempt names unknown test(s): {', '.join(unknown)} "
            f"(tests of the suite: {', '.join(sorted(names))})"
        )
    for item in suite_items:
        reason = spec.exemptions.get(getattr(item, "originalname", item.name))
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"exempt: {reason}"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    spec = config.stash.get(SPEC_KEY, None)
    if spec is not None or option(config, "--adaptor"):
        src = config.stash.get(SPEC_PATH_KEY, None)
        kind = spec.type if spec else option(config, "--adaptor")
        lines.append(f"contract: adaptor {kind}" + (f" from {src}" if src else " (structure)"))
        for test, reason in sorted((spec.exemptions if spec else {}).items()):
            lines.append(f"contract: exempt {test}: {reason}")
    return lines


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def contract_adaptor_type(pytestconfig: pytest.Config) -> str:
    spec = pytestconfig.stash.get(SPEC_KEY, None)
    name = option(pytestconfig, "--adaptor") or (spec.type if spec else None)
    if not name:
        pytest.skip("the adaptor suite needs --adaptor TYPE and/or --adaptor-config FILE")
    return str(name)


@pytest.fixture(scope="session")
def contract_adaptor_class(contract_adaptor_type: str) -> type[Adaptor]:
    cls, problems = load_entry_point(contract_adaptor_type)
    if cls is None:
        pytest.fail("\n".join(problems), pytrace=False)
    return cls


@pytest.fixture(scope="session")
def contract_spec(pytestconfig: pytest.Config) -> AdaptorSpec:
    spec = pytestconfig.stash.get(SPEC_KEY, None)
    if spec is None:
        pytest.skip("behavioural checks need --adaptor-config FILE (type, options, fixtures)")
    return spec


@pytest.fixture(scope="session")
def contract_spec_dir(pytestconfig: pytest.Config, contract_spec: AdaptorSpec) -> Path:
    path = pytestconfig.stash.get(SPEC_PATH_KEY, None)
    assert path is not None
    return path.parent


@pytest.fixture(scope="session")
def contract_fixtures(contract_spec: AdaptorSpec) -> Fixtures:
    return contract_spec.fixtures


@pytest.fixture(scope="session")
def contract_runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole run: the adaptor's clients and pools live in it."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="session")
def contract_run(contract_runner: asyncio.Runner) -> Callable[[Awaitable[T]], T]:
    def run(aw: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await aw

        return contract_runner.run(wrap())

    return run


@pytest.fixture(scope="session")
def contract_backend(
    contract_spec: AdaptorSpec, contract_spec_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBackend | None]:
    if contract_spec.backend is None:
        yield None
        return
    try:
        with running_backend(
            contract_spec.backend, contract_spec_dir, tmp_path_factory.mktemp("backend")
        ) as backend:
            yield backend
    except BackendFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass
class Stores:
    """The stores handed to stateful adaptors in this run: one per namespace, from the host's
    ``repairs_gateway_contract_store`` hook (the gateway's) or the kit's own SQLite store."""

    config: pytest.Config
    directory: Path
    made: dict[str, Any] = field(default_factory=dict)

    def get(self, namespace: str) -> Any:
        if namespace not in self.made:
            store = self.config.hook.repairs_gateway_contract_store(
                namespace=namespace, directory=self.directory
            )
            if store is None:
                from repairs_gateway_sdk.testing.store import sqlite_store

                try:
                    store = sqlite_store(self.directory, namespace)
                except RuntimeError as exc:
                    pytest.fail(str(exc), pytrace=False)
            self.made[namespace] = store
        return self.made[namespace]

    async def close(self) -> None:
        for store in self.made.values():
            closer = getattr(store, "close", None)
            if closer is not None and inspect.iscoroutinefunction(closer):
                await closer()


@pytest.fixture(scope="session")
def contract_stores(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    contract_run: Callable[[Awaitable[Any]], Any],
) -> Iterator[Stores]:
    stores = Stores(pytestconfig, tmp_path_factory.mktemp("store"))
    yield stores
    contract_run(stores.close())


@dataclass
class AdaptorFactory:
    """Builds adaptor instances from the contract configuration (with option overrides)."""

    cls: type[Adaptor]
    spec: AdaptorSpec
    spec_dir: Path
    data_dir: Path
    stores: Stores | None
    replacements: dict[str, str] = field(default_factory=dict)

    def options(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        merged = deep_merge(self.spec.options, overrides or {})
        result: dict[str, Any] = substitute(merged, self.replacements)
        return result

    def store(self) -> Any:
        """The adaptor's namespaced store, for adaptors that keep state (else None)."""
        namespace = getattr(self.cls, "store_namespace", None)
        if not namespace or self.stores is None:
            return None
        return self.stores.get(namespace)

    def build(self, overrides: dict[str, Any] | None = None, name: str = "contract") -> Adaptor:
        config = self.cls.Config.model_validate(self.options(overrides))
        ctx = AdaptorContext(
            council="contract",
            name=name,
            config_dir=self.spec_dir,
            data_dir=self.data_dir,
            store=self.store(),
        )
        return self.cls(config, ctx)


@pytest.fixture(scope="session")
def contract_adaptor_factory(
    contract_adaptor_class: type[Adaptor],
    contract_spec: AdaptorSpec,
    contract_spec_dir: Path,
    contract_backend: RunningBackend | None,
    contract_stores: Stores,
    tmp_path_factory: pytest.TempPathFactory,
) -> AdaptorFactory:
    replacements = {"port": str(contract_backend.port)} if contract_backend else {}
    return AdaptorFactory(
        contract_adaptor_class,
        contract_spec,
        contract_spec_dir,
        tmp_path_factory.mktemp("data"),
        contract_stores,
        replacements,
    )


@pytest.fixture(scope="session")
def contract_adaptor(
    contract_adaptor_factory: AdaptorFactory, contract_run: Callable[[Awaitable[Any]], Any]
) -> Iterator[Adaptor]:
    try:
        adaptor = contract_adaptor_factory.build()
    except Exception as exc:  # noqa: BLE001 - show the config problem as the failure
        pytest.fail(f"the adaptor cannot be built from the contract options: {exc}")
    contract_run(adaptor.start())
    yield adaptor
    contract_run(adaptor.close())


@pytest.fixture
def contract_address_source(contract_adaptor: Adaptor) -> AddressSource:
    if not isinstance(contract_adaptor, AddressSource):
        pytest.skip(f"{contract_adaptor.type_name} is not an AddressSource")
    return contract_adaptor


@pytest.fixture
def contract_scheduler(contract_adaptor: Adaptor) -> Scheduler:
    if not isinstance(contract_adaptor, Scheduler):
        pytest.skip(f"{contract_adaptor.type_name} is not a Scheduler")
    return contract_adaptor


@pytest.fixture
def contract_works_order_sink(contract_adaptor: Adaptor) -> WorksOrderSink:
    if not isinstance(contract_adaptor, WorksOrderSink):
        pytest.skip(f"{contract_adaptor.type_name} is not a WorksOrderSink")
    return contract_adaptor

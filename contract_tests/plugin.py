"""The pytest plugin of the contract test kit.

Installed through the ``pytest11`` entry point (or loaded with ``-p contract_tests.plugin``) it
does nothing until one of its options is given:

- ``--adaptor TYPE [--adaptor-config FILE]`` runs the adaptor suite: structural checks for
  TYPE, and with FILE the behavioural checks per capability against the configured backend.
- ``--api-base-url URL --api-key KEY --api-council C [--write]`` runs the HTTP API suite.

When no test paths are given on the command line, the selected suites are collected instead of
the project's own tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from contract_tests.backend import BackendFailed, RunningBackend, running_backend
from contract_tests.spec import AdaptorSpec, Fixtures, SpecError, deep_merge, load_spec, substitute
from contract_tests.structure import load_entry_point
from repairs_gateway_sdk.adaptor import (
    Adaptor,
    AdaptorContext,
    AddressSource,
    Scheduler,
    WorksOrderSink,
)

HERE = Path(__file__).resolve().parent
ADAPTOR_SUITE = HERE / "adaptor_suite"
API_SUITE = HERE / "api_suite"
HRO_SUITE = HERE / "hro_suite"

T = TypeVar("T")
SPEC_KEY = pytest.StashKey[AdaptorSpec | None]()
SPEC_PATH_KEY = pytest.StashKey[Path | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("repairs-gateway-contract", "repairs gateway contract test kit")
    g.addoption("--adaptor", metavar="TYPE", help="adaptor type (entry-point name) to check")
    g.addoption(
        "--adaptor-config",
        metavar="FILE",
        help="contract configuration (YAML: type, options, fixtures, backend)",
    )
    g.addoption("--api-base-url", metavar="URL", help="base URL of a standard API to check")
    g.addoption("--api-key", metavar="KEY", help="API key for the API suite (Bearer)")
    g.addoption("--api-council", metavar="ID", help="council id served at the base URL")
    g.addoption(
        "--api-config", metavar="FILE", help="YAML with postcode, property_id, sor_code, ..."
    )
    g.addoption("--api-postcode", metavar="POSTCODE", help="a postcode with properties")
    g.addoption("--api-property-id", metavar="ID", help="a property that can be booked")
    g.addoption("--api-sor-code", metavar="CODE", help="a bookable SoR code")
    g.addoption(
        "--hro-base-url",
        metavar="URL",
        help="HRO facade suite: the REPAIRS_API_BASE_URL a Housing Repairs Online front end uses",
    )
    g.addoption(
        "--hro-identifier",
        metavar="ID",
        help="HRO suite: the N&S REPAIRS_API_IDENTIFIER (omit for a facade without credentials)",
    )
    g.addoption(
        "--hro-config", metavar="FILE", help="HRO suite: YAML with postcode, property ids, choices"
    )
    g.addoption(
        "--write",
        action="store_true",
        default=False,
        help="API suite: also book, move and cancel repairs (creates real bookings)",
    )


def _opt(config: pytest.Config, name: str) -> Any:
    return config.getoption(name.lstrip("-").replace("-", "_"), default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract_adaptor: adaptor conformance suite")
    config.addinivalue_line("markers", "contract_api: standard HTTP API conformance suite")
    config.addinivalue_line("markers", "contract_hro: Housing Repairs Online facade suite")
    spec_file = _opt(config, "--adaptor_config")
    spec: AdaptorSpec | None = None
    path: Path | None = None
    if spec_file:
        path = Path(spec_file).resolve()
        try:
            spec = load_spec(path)
        except SpecError as exc:
            raise pytest.UsageError(str(exc)) from None
        wanted = _opt(config, "--adaptor")
        if wanted and wanted != spec.type:
            raise pytest.UsageError(
                f"--adaptor {wanted} does not match type {spec.type!r} in {spec_file}"
            )
    config.stash[SPEC_KEY] = spec
    config.stash[SPEC_PATH_KEY] = path
    suites: list[Path] = []
    if _opt(config, "--adaptor") or spec is not None:
        suites.append(ADAPTOR_SUITE)
    if _opt(config, "--api_base_url"):
        for needed in ("--api_key", "--api_council"):
            if not _opt(config, needed):
                raise pytest.UsageError(f"--api-base-url needs {needed.replace('_', '-')} as well")
        suites.append(API_SUITE)
    if _opt(config, "--hro_base_url"):
        suites.append(HRO_SUITE)
    if not suites:
        return
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        given = {Path(a.split("::")[0]).resolve() for a in config.args}
        config.args.extend(str(s) for s in suites if s not in given)
    else:
        config.args[:] = [str(s) for s in suites]


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
    for item in items:
        if _in(item, API_SUITE):
            item.add_marker(pytest.mark.contract_api)
        if _in(item, HRO_SUITE):
            item.add_marker(pytest.mark.contract_hro)
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
    if spec is not None or _opt(config, "--adaptor"):
        src = config.stash.get(SPEC_PATH_KEY, None)
        kind = spec.type if spec else _opt(config, "--adaptor")
        lines.append(f"contract: adaptor {kind}" + (f" from {src}" if src else " (structure)"))
        for test, reason in sorted((spec.exemptions if spec else {}).items()):
            lines.append(f"contract: exempt {test}: {reason}")
    if _opt(config, "--api_base_url"):
        mode = "read and write" if _opt(config, "--write") else "read-only"
        lines.append(f"contract: API at {_opt(config, '--api_base_url')} ({mode})")
    if _opt(config, "--hro_base_url"):
        mode = "read and write" if _opt(config, "--write") else "read-only"
        auth = "N&S token" if _opt(config, "--hro_identifier") else "no credentials"
        lines.append(f"contract: HRO facade at {_opt(config, '--hro_base_url')} ({auth}, {mode})")
    return lines


# -- adaptor suite fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def contract_adaptor_type(pytestconfig: pytest.Config) -> str:
    spec = pytestconfig.stash.get(SPEC_KEY, None)
    name = _opt(pytestconfig, "--adaptor") or (spec.type if spec else None)
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


@pytest.fixture(scope="session")
def contract_database(
    tmp_path_factory: pytest.TempPathFactory, contract_run: Callable[[Awaitable[Any]], Any]
) -> Iterator[Any]:
    """A fresh gateway database (SQLite) for adaptors that keep state in it."""
    from gateway.storage.database import Database

    db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'contract.db'}")
    db.migrate()
    yield db
    contract_run(db.dispose())


@dataclass
class AdaptorFactory:
    """Builds adaptor instances from the contract configuration (with option overrides)."""

    cls: type[Adaptor]
    spec: AdaptorSpec
    spec_dir: Path
    data_dir: Path
    database: Any
    replacements: dict[str, str] = field(default_factory=dict)

    def options(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        merged = deep_merge(self.spec.options, overrides or {})
        result: dict[str, Any] = substitute(merged, self.replacements)
        return result

    def store(self) -> Any:
        """The adaptor's namespaced store, for adaptors that keep state (else None)."""
        namespace = getattr(self.cls, "store_namespace", None)
        if not namespace or self.database is None:
            return None
        from gateway.storage.adaptor_store import NamespacedStore

        return NamespacedStore(self.database, namespace)

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
    contract_database: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> AdaptorFactory:
    replacements = {"port": str(contract_backend.port)} if contract_backend else {}
    return AdaptorFactory(
        contract_adaptor_class,
        contract_spec,
        contract_spec_dir,
        tmp_path_factory.mktemp("data"),
        contract_database,
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


# -- API suite fixtures ----------------------------------------------------------------------


@dataclass
class ApiTarget:
    base_url: str
    key: str
    council: str
    write: bool
    postcode: str = "LN1 1AA"
    property_id: str = "00012345"
    sor_code: str = "N631111"
    unknown_sor_code: str = "ZZ99999"
    unknown_property_id: str = "NO-SUCH-PROPERTY-0"
    phone: str = "07700 900123"
    page_size: int = 3

    @property
    def prefix(self) -> str:
        return f"/v1/councils/{self.council}"


API_CONFIG_KEYS = {
    "postcode",
    "property_id",
    "sor_code",
    "unknown_sor_code",
    "unknown_property_id",
    "phone",
    "page_size",
}


@pytest.fixture(scope="session")
def contract_api_target(pytestconfig: pytest.Config) -> ApiTarget:
    base = _opt(pytestconfig, "--api_base_url")
    if not base:
        pytest.skip("the API suite needs --api-base-url, --api-key and --api-council")
    values: dict[str, Any] = {}
    cfg = _opt(pytestconfig, "--api_config")
    if cfg:
        raw = yaml.safe_load(Path(cfg).read_text(encoding="utf-8")) or {}
        unknown = set(raw) - API_CONFIG_KEYS
        if unknown:
            raise pytest.UsageError(
                f"{cfg}: unknown key(s) {sorted(unknown)}; allowed: {sorted(API_CONFIG_KEYS)}"
            )
        values.update({k: str(v) if k != "page_size" else int(v) for k, v in raw.items()})
    for opt, key in (
        ("--api_postcode", "postcode"),
        ("--api_property_id", "property_id"),
        ("--api_sor_code", "sor_code"),
    ):
        if _opt(pytestconfig, opt):
            values[key] = _opt(pytestconfig, opt)
    return ApiTarget(
        base_url=str(base).rstrip("/"),
        key=str(_opt(pytestconfig, "--api_key")),
        council=str(_opt(pytestconfig, "--api_council")),
        write=bool(_opt(pytestconfig, "--write")),
        **values,
    )


@pytest.fixture(scope="session")
def contract_api(contract_api_target: ApiTarget) -> Iterator[Any]:
    import httpx

    with httpx.Client(
        base_url=contract_api_target.base_url,
        headers={"Authorization": f"Bearer {contract_api_target.key}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def contract_api_anon(contract_api_target: ApiTarget) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=contract_api_target.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def contract_api_write(contract_api_target: ApiTarget) -> ApiTarget:
    if not contract_api_target.write:
        pytest.skip("writes (bookings) only with --write")
    return contract_api_target


# -- HRO facade suite fixtures ---------------------------------------------------------------


@dataclass
class HroTarget:
    """A Housing Repairs Online backend (the gateway's facade or any other) and what to try."""

    base_url: str
    identifier: str | None
    write: bool
    postcode: str = "LN1 1AA"
    tenant_property: str = "00012345"
    communal_postcode: str = "LN1 1AA"
    communal_property: str = "00020000"
    tenant_choice: list[str] = field(default_factory=lambda: ["bedroom", "walls"])
    leasehold_choice: list[str] = field(default_factory=lambda: ["outside", "window"])
    communal_choice: list[str] = field(default_factory=lambda: ["stairs", "lighting"])
    phone: str = "02079460000"
    email: str = "contract-test@example.org"


HRO_CONFIG_KEYS = {
    "postcode",
    "tenant_property",
    "communal_postcode",
    "communal_property",
    "tenant_choice",
    "leasehold_choice",
    "communal_choice",
    "phone",
    "email",
}


@pytest.fixture(scope="session")
def contract_hro_target(pytestconfig: pytest.Config) -> HroTarget:
    base = _opt(pytestconfig, "--hro_base_url")
    if not base:
        pytest.skip("the HRO suite needs --hro-base-url")
    values: dict[str, Any] = {}
    cfg = _opt(pytestconfig, "--hro_config")
    if cfg:
        raw = yaml.safe_load(Path(cfg).read_text(encoding="utf-8")) or {}
        unknown = set(raw) - HRO_CONFIG_KEYS
        if unknown:
            raise pytest.UsageError(
                f"{cfg}: unknown key(s) {sorted(unknown)}; allowed: {sorted(HRO_CONFIG_KEYS)}"
            )
        values.update(
            {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in raw.items()}
        )
    identifier = _opt(pytestconfig, "--hro_identifier")
    return HroTarget(
        base_url=str(base).rstrip("/"),
        identifier=str(identifier) if identifier else None,
        write=bool(_opt(pytestconfig, "--write")),
        **values,
    )

"""The pytest plugin of the gateway's contract test kit.

Installed through the ``pytest11`` entry point (or loaded with ``-p contract_tests.plugin``) it
does nothing until one of its options is given:

- ``--api-base-url URL --api-key KEY --api-council C [--write]`` runs the HTTP API suite;
- ``--hro-base-url URL [--hro-identifier ID]`` runs the Housing Repairs Online facade suite.

The adaptor suite (``--adaptor TYPE [--adaptor-config FILE]``) lives in the SDK
(``repairs_gateway_sdk.testing``, the ``testing`` extra) so that a supplier can run it without
the gateway; this plugin loads it and hands stateful adaptors the gateway's own store.

When no test paths are given on the command line, the selected suites are collected instead of
the project's own tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

# the same name as the SDK's pytest11 entry point, so it is registered once either way
pytest_plugins = ["repairs_gateway_sdk.testing.plugin"]

HERE = Path(__file__).resolve().parent
API_SUITE = HERE / "api_suite"
HRO_SUITE = HERE / "hro_suite"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("repairs-gateway-contract", "repairs gateway contract test kit")
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
    # imported here, not at the top: pytest rewrites the SDK plugin's asserts when it loads it
    from repairs_gateway_sdk.testing.plugin import add_suites

    config.addinivalue_line("markers", "contract_api: standard HTTP API conformance suite")
    config.addinivalue_line("markers", "contract_hro: Housing Repairs Online facade suite")
    suites: list[Path] = []
    if _opt(config, "--api_base_url"):
        for needed in ("--api_key", "--api_council"):
            if not _opt(config, needed):
                raise pytest.UsageError(f"--api-base-url needs {needed.replace('_', '-')} as well")
        suites.append(API_SUITE)
    if _opt(config, "--hro_base_url"):
        suites.append(HRO_SUITE)
    add_suites(config, suites)


def _in(item: pytest.Item, folder: Path) -> bool:
    return folder in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        if _in(item, API_SUITE):
            item.add_marker(pytest.mark.contract_api)
        if _in(item, HRO_SUITE):
            item.add_marker(pytest.mark.contract_hro)


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    if _opt(config, "--api_base_url"):
        mode = "read and write" if _opt(config, "--write") else "read-only"
        lines.append(f"contract: API at {_opt(config, '--api_base_url')} ({mode})")
    if _opt(config, "--hro_base_url"):
        mode = "read and write" if _opt(config, "--write") else "read-only"
        auth = "N&S token" if _opt(config, "--hro_identifier") else "no credentials"
        lines.append(f"contract: HRO facade at {_opt(config, '--hro_base_url')} ({auth}, {mode})")
    return lines


# -- the adaptor suite's store: the gateway's own ----------------------------------------


class _GatewayStore:
    """The gateway's namespaced store on a fresh, migrated SQLite database."""

    def __init__(self, directory: Path, namespace: str) -> None:
        from gateway.storage.adaptor_store import NamespacedStore
        from gateway.storage.database import Database

        self.database = Database(f"sqlite:///{directory / 'contract.db'}")
        self.database.migrate()
        self.store = NamespacedStore(self.database, namespace)
        self.namespace = namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def close(self) -> None:
        await self.database.dispose()


@pytest.hookimpl(trylast=True)
def repairs_gateway_contract_store(namespace: str, directory: Path) -> Any:
    return _GatewayStore(directory, namespace)


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


def _suite_config(cfg: Any, allowed: set[str]) -> dict[str, Any]:
    """A suite's YAML file of values (empty without one); unknown keys are a usage error."""
    if not cfg:
        return {}
    raw: dict[str, Any] = yaml.safe_load(Path(cfg).read_text(encoding="utf-8")) or {}
    unknown = set(raw) - allowed
    if unknown:
        raise pytest.UsageError(
            f"{cfg}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return raw


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
    raw = _suite_config(_opt(pytestconfig, "--api_config"), API_CONFIG_KEYS)
    if raw:
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
    raw = _suite_config(_opt(pytestconfig, "--hro_config"), HRO_CONFIG_KEYS)
    if raw:
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

"""Schemathesis against the OpenAPI schema, in-process, with all default checks."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from gateway.api.app import create_app
from gateway.auth import KeyStore
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.gatewaykit import demo_council, write_config

_tmp = Path(tempfile.mkdtemp(prefix="rgw-schemathesis-"))
_council, _files = demo_council()
write_config(_tmp / "config", {"demo": _council}, _files)
_settings = Settings(
    config_dir=_tmp / "config",
    data_dir=_tmp / "data",
    database_url=f"sqlite:///{_tmp / 'gateway.db'}",
    secret_key="st",
)


async def _key() -> str:
    db = Database(_settings.resolved_database_url())
    await asyncio.to_thread(db.migrate)
    key = await KeyStore(db).create("schemathesis", ["demo"], "admin", 10**9)
    await db.dispose()
    return key


KEY = asyncio.run(_key())
app = create_app(_settings)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.auth()
class ApiKey:
    """The schema's bearer scheme, with a key made for this test."""

    def get(self, case: schemathesis.Case, ctx: object) -> str:
        return KEY

    def set(self, case: schemathesis.Case, data: str, ctx: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    if "council" in case.path_parameters:
        case.path_parameters["council"] = "demo"
    response = case.call_and_validate()
    if case.meta is not None and case.meta.generation.mode.name == "POSITIVE":
        assert response.status_code != 401, response.text  # the key was sent and accepted

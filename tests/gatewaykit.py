"""Test kit: a real gateway (app, database, councils, adaptors) in-process for API-level tests.

async with running_gateway(tmp_path, {"demo": council_yaml}, files={"sor.csv": "..."}) as gw:
    r = await gw.client.get("/v1/councils/demo/addresses", params={"postcode": "LN1 1AA"})
    await gw.drain_outbox()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.storage.database import Database

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEMO_CONFIG = REPO / "deploy" / "config"
DEMO_SOR = REPO / "mappings" / "examples" / "demo-sor.csv"


@dataclass
class GatewayHandle:
    app: FastAPI
    runtime: Runtime
    client: httpx.AsyncClient
    config_dir: Path
    key: str

    @property
    def database(self) -> Database:
        return self.runtime.database

    async def drain_outbox(self, timeout: float = 30.0) -> None:
        await self.runtime.worker.drain(timeout)

    async def create_key(
        self, councils: list[str], role: str = "frontend", rate_per_minute: int = 10_000
    ) -> str:
        return await self.runtime.keys.create("test", councils, role, rate_per_minute)

    def client_for(self, key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # as a real server would: an unhandled error is a 500 answer, not a test-side exception
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://gateway.test",
            headers=headers,
            timeout=60,
        )


def write_config(
    config_dir: Path, councils: dict[str, dict[str, Any]], files: dict[str, str] | None = None
) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    for cid, body in councils.items():
        (config_dir / f"{cid}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    for name, text in (files or {}).items():
        (config_dir / name).write_text(text)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    councils: dict[str, dict[str, Any]],
    files: dict[str, str] | None = None,
    *,
    database_url: str | None = None,
    settings: dict[str, Any] | None = None,
) -> AsyncIterator[GatewayHandle]:
    config_dir = tmp_path / "config"
    write_config(config_dir, councils, files)
    s = Settings(
        config_dir=config_dir,
        data_dir=tmp_path / "data",
        database_url=database_url or f"sqlite:///{tmp_path / 'gateway.db'}",
        secret_key="test-secret",
        require_api_keys=True,
        **(settings or {}),
    )
    rt = Runtime(s, run_worker=False)
    app = create_app(s, runtime=rt)
    await rt.start()
    try:
        key = await rt.keys.create("test-admin", list(councils), "admin", 1_000_000)
        handle = GatewayHandle(app, rt, httpx.AsyncClient(), config_dir, key)
        handle.client = handle.client_for(key)
        async with handle.client:
            yield handle
    finally:
        await rt.stop()


def demo_council(**overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The demo council's configuration and files, ready for ``running_gateway``."""
    body = yaml.safe_load((DEMO_CONFIG / "demo.yaml").read_text())
    body["mappings"] = "sor.csv"
    body.update(overrides)
    files = {
        "sor.csv": DEMO_SOR.read_text(),
        "demo-properties.csv": (DEMO_CONFIG / "demo-properties.csv").read_text(),
    }
    return body, files

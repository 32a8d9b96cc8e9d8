from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.logging import configure
from tests.pg import create_database, pg_bindir, postgres_server


@pytest.fixture(autouse=True, scope="session")
def _json_logs() -> None:
    configure("info")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    if pg_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries not found (install Debian 'postgresql'; "
            ".ci/run does) - PostgreSQL storage tests skipped"
        )
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test once on SQLite and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return create_database(admin, f"t_{uuid.uuid4().hex[:12]}")

"""A supplier's machine: a fresh virtual environment with only the SDK (from ./sdk, with its
testing extra), pytest-asyncio and what a scaffolded scheduler adaptor declares. The kit runs
there and passes, and neither FastAPI, SQLAlchemy nor the gateway is installed.

Needs the package index (pip downloads pydantic, httpx, pytest, PyYAML, setuptools); skipped
with the reason when it cannot be reached. Everything pip fetches is cached under tmp only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.scaffold import new_adaptor
from tests.contract.kit import REPO, output

pytestmark = pytest.mark.slow

INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/"


def _index_reachable() -> str | None:
    """None if pip's index answers, else why not."""
    try:
        with urllib.request.urlopen(f"{INDEX}pip/", timeout=10):  # noqa: S310 - pip's index
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code < 500 else f"{INDEX} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{INDEX} cannot be reached ({type(exc).__name__}: {exc})"


NETWORK_TROUBLE = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Could not fetch URL",
    "No matching distribution found",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
)


def _env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHON")) and k != "PIP_CACHE_DIR"
    }
    env.update(
        PIP_CACHE_DIR=str(tmp / "pip-cache"),  # nothing cached outside tmp
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our interpreter, our arguments
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _pip(python: str, env: dict[str, str], cwd: Path, *args: str) -> None:
    done = _run([python, "-m", "pip", "install", "--quiet", *args], env, cwd)
    if done.returncode != 0 and any(t in done.stdout + done.stderr for t in NETWORK_TROUBLE):
        pytest.skip(f"pip cannot reach the package index:\n{done.stderr[-2000:]}")
    assert done.returncode == 0, output(done)


def test_a_scheduler_adaptor_passes_the_kit_with_only_the_sdk(tmp_path: Path) -> None:
    why = _index_reachable()
    if why:
        pytest.skip(f"pip's package index is needed to build a fresh environment: {why}")
    env = _env(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # noqa: S603
    python = str(venv / "bin" / "python")
    # the SDK from a copy of ./sdk (pip builds in the source tree: keep the checkout clean)
    sdk = tmp_path / "sdk"
    shutil.copytree(
        REPO / "sdk", sdk, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    _pip(python, env, tmp_path, f"{sdk}[testing]", "pytest-asyncio")
    new_adaptor("acme_diary", tmp_path, kind="scheduler")
    project = tmp_path / "acme_diary"
    _pip(python, env, tmp_path, f"{project}[test]")

    listed = _run([python, "-m", "pip", "list", "--format=json"], env, tmp_path)
    assert listed.returncode == 0, output(listed)
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"repairs-gateway-sdk", "repairs-gateway-acme-diary", "pytest-asyncio"} <= names
    for absent in ("fastapi", "sqlalchemy", "repairs-gateway", "starlette", "alembic"):
        assert absent not in names, f"{absent} is installed: {sorted(names)}"
    probe = _run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('gateway'))"], env, tmp_path
    )
    assert probe.stdout.strip() == "None", output(probe)

    # the kit as a supplier runs it, then the package's own generated test
    config = project / "acme_diary" / "contract.yaml"
    done = _run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--adaptor-config",
            str(config),
        ],
        env,
        tmp_path,
    )
    assert done.returncode == 0, output(done)
    assert "16 passed" in done.stdout and "failed" not in done.stdout, output(done)
    done = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], env, project)
    assert done.returncode == 0 and "4 passed" in done.stdout, output(done)

"""deploy/compose.yaml runs the production topology (PostgreSQL, a migrate step, two
`serve --no-worker` gateways, one worker, the simulators) with no literal secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.settings import looks_like_placeholder

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")
SECRETISH = re.compile(r"PASSWORD|SECRET|KEY|DATABASE_URL", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    gateways = [s for s in services.values() if s.get("command", [None])[0] == "serve"]
    assert len(gateways) == 2
    for g in gateways:
        assert g["command"][:2] == ["serve", "--no-worker"]
        assert g["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    sims = [s for s in services.values() if "simulator" in " ".join(s.get("entrypoint", []))]
    assert len(sims) == 3
    image = services["db"]["image"]
    assert ":" in image and not image.endswith(":latest")
    for name, s in services.items():
        if name != "db":
            assert s["read_only"] is True and s["cap_drop"] == ["ALL"], name


def test_no_literal_secrets_and_every_one_is_required(compose: dict[str, Any]) -> None:
    required: set[str] = set()
    for name, s in compose["services"].items():
        for key, value in (s.get("environment") or {}).items():
            if SECRETISH.search(key):
                found = REQUIRED.findall(str(value))
                assert found, f"{name}: {key} must come from deploy/.env (${{VAR:?...}})"
                required.update(found)
        for arg in s.get("command", []):
            required.update(REQUIRED.findall(arg))
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required == set(example)  # the example names every variable compose requires
    for key, value in example.items():
        assert looks_like_placeholder(value), key  # the gateway refuses them unchanged


def test_the_compose_council_configuration_is_valid(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = dict(
        v.split(":")[:2][::-1] for v in compose["services"]["gateway-1"]["volumes"]
    )  # container path -> host path
    config = (DEPLOY / mounts["/config"]).resolve()
    mappings = (DEPLOY / mounts["/mappings"]).resolve()
    local = tmp_path / "config"
    local.mkdir()
    for f in config.iterdir():
        local.joinpath(f.name).write_text(f.read_text().replace("/mappings/", f"{mappings}/"))
    for var in ("UH_PASSWORD", "DRS_PASSWORD", "TOTALMOBILE_SECRET"):
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["check", "--config-dir", str(local)])
    assert result.exit_code == 0, result.output

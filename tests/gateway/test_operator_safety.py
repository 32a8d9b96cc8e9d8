"""Operator safety: exports are safe to open in a spreadsheet, the CLI refuses what it cannot
do, and settings that would open the gateway up are refused outside the demo."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.export import spreadsheet_safe
from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.gatewaykit import DEMO_CONFIG, demo_council, running_gateway

runner = CliRunner()


def test_formula_cells_are_written_as_text() -> None:
    assert (
        spreadsheet_safe('=HYPERLINK("http://evil","click")')
        == '\'=HYPERLINK("http://evil","click")'
    )
    for cell in ("+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert str(spreadsheet_safe(cell)).startswith("'")
    assert spreadsheet_safe("Tap drips") == "Tap drips"
    assert spreadsheet_safe("line\x0bbreak\x00") == "line break "
    assert spreadsheet_safe(True) is True


def test_an_export_of_hostile_text_opens_as_text(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    council, files = demo_council()
    db = tmp_path / "gateway.db"

    async def book() -> None:
        async with running_gateway(
            tmp_path, {"demo": council}, files, database_url=f"sqlite:///{db}"
        ) as gw:
            slot = (
                await gw.client.get(
                    "/v1/councils/demo/appointments",
                    params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
                )
            ).json()["slots"][0]
            r = await gw.client.post(
                "/v1/councils/demo/repairs",
                headers={"Idempotency-Key": "x"},
                json={
                    "property_id": "00012345",
                    "sor_code": "N631111",
                    "description": '=HYPERLINK("http://evil.example","Open")',
                    "slot_token": slot["slot_token"],
                    "contact": {"name": "@SUM(1+1)", "phone": "+44 7700 900001"},
                },
            )
            assert r.status_code == 201, r.text

    asyncio.run(book())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    result = runner.invoke(app, ["export", "bookings", "demo", "--config-dir", str(DEMO_CONFIG)])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(io.StringIO(result.output)))
    assert row["description"] == '\'=HYPERLINK("http://evil.example","Open")'
    assert row["contact_name"] == "'@SUM(1+1)"
    assert row["contact_phone"] == "'+44 7700 900001"
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@"))


def test_export_refuses_an_unknown_council_or_status(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    r = runner.invoke(app, ["export", "bookings", "nosuch", "--config-dir", str(DEMO_CONFIG)])
    assert r.exit_code == 2 and "no council 'nosuch'" in r.output and "demo" in r.output
    r = runner.invoke(
        app, ["export", "bookings", "demo", "--status", "bookedd", "--config-dir", str(DEMO_CONFIG)]
    )
    assert r.exit_code == 2 and "unknown status 'bookedd'" in r.output


def test_disabling_keys_is_refused_outside_the_demo(tmp_path: Path) -> None:
    base = {
        "config_dir": DEMO_CONFIG,
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'g.db'}",
        "secret_key": "a-long-random-test-secret-value",
        "require_api_keys": False,
    }
    with pytest.raises(ValueError, match="GATEWAY_REQUIRE_API_KEYS=false"):
        Runtime(Settings(**base))  # type: ignore[arg-type]
    Runtime(Settings(**base, demo=True))  # type: ignore[arg-type]  # the demo may

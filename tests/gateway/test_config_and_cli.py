"""Council configuration validation and the command line, as council IT would use them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from tests.gatewaykit import DEMO_CONFIG, demo_council, write_config

runner = CliRunner()


def test_check_accepts_the_shipped_demo_config() -> None:
    result = runner.invoke(app, ["check", "--config-dir", str(DEMO_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "demo: 1 adaptor(s), 22 SoR codes - ok" in result.output


def test_check_names_file_line_and_key(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    council, files = demo_council()
    council["adaptors"]["demo_csv"]["options"]["calendar"]["capacity"] = "lots"
    council["routes"]["appointments"] = "missing_adaptor"
    write_config(tmp_path, {"demo": council}, files)
    (tmp_path / "other.yaml").write_text(
        "name: Other\nmappings: sor.csv\nadaptors:\n  x:\n    type: no_such_type\n"
        "    options: {}\n  y:\n    type: csv_fallback\n    options:\n"
        "      properties_file: p.csv\n      colour: blue\nroutes:\n  addresses: x\n"
        "  appointments:\n    default: y\n    shadow: x\n"
    )
    (tmp_path / "third.yaml").write_text(
        "name: T\nmappings: sor.csv\nadaptors:\n  a:\n    type: csv_fallback\n"
        "    options:\n      properties_file: ${RGW_TEST_UNSET_VAR}\nroutes:\n  addresses: a\n"
    )
    monkeypatch.delenv("RGW_TEST_UNSET_VAR", raising=False)
    result = runner.invoke(app, ["check", "--config-dir", str(tmp_path)])
    assert result.exit_code == 1
    out = result.output
    assert f"{tmp_path / 'demo.yaml'}:" in out and "missing_adaptor" in out
    assert "other.yaml:5: adaptors.x.type: unknown adaptor type 'no_such_type'" in out
    assert "other.yaml:11: adaptors.y.options.colour: unknown key 'colour'" in out
    assert (
        "third.yaml:7: adaptors.a.options.properties_file: environment variable "
        "RGW_TEST_UNSET_VAR is not set" in out
    )


def test_check_reports_bad_mapping_lines(tmp_path: Path) -> None:
    council, files = demo_council()
    files["sor.csv"] += "N631111,dup,PL,small,,,\n"
    write_config(tmp_path, {"demo": council}, files)
    result = runner.invoke(app, ["check", "--config-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'sor.csv'}:24: sor_code: duplicate code 'N631111'" in result.output


def test_mappings_validate(tmp_path: Path) -> None:
    ok = runner.invoke(
        app,
        ["mappings", "validate", str(DEMO_CONFIG.parent.parent / "mappings/examples/demo-sor.csv")],
    )
    assert ok.exit_code == 0 and "22 codes, valid" in ok.output
    bad = tmp_path / "t.csv"
    bad.write_text("sor_code,trade,size\nA,PL,enormous\n")
    result = runner.invoke(app, ["mappings", "validate", str(bad)])
    assert result.exit_code == 1 and f"{bad}:2: size: bad size 'enormous'" in result.output


def test_bad_config_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("name: [unclosed\n")
    result = runner.invoke(app, ["serve", "--config-dir", str(tmp_path), "--port", "1"])
    assert result.exit_code == 2
    assert "demo.yaml:" in result.output and "not valid YAML" in result.output


def test_export_bookings_as_csv_for_councils_working_by_hand(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import csv
    import io

    from tests.gatewaykit import running_gateway

    council, files = demo_council()
    db = tmp_path / "gateway.db"

    async def book_one() -> tuple[str, str]:
        async with running_gateway(
            tmp_path, {"demo": council}, files, database_url=f"sqlite:///{db}"
        ) as gw:
            slots = (
                await gw.client.get(
                    "/v1/councils/demo/appointments",
                    params={"property_id": "00012345", "sor_code": "N631111", "page_size": 1},
                )
            ).json()
            start = slots["slots"][0]["start"]
            r = await gw.client.post(
                "/v1/councils/demo/repairs",
                headers={"Idempotency-Key": "x"},
                json={
                    "property_id": "00012345",
                    "sor_code": "N631111",
                    "description": "Tap drips",
                    "slot_token": slots["slots"][0]["slot_token"],
                    "contact": {"name": "A Resident", "phone": "07700900001"},
                },
            )
            return str(r.json()["reference"]), str(start)

    ref, start = asyncio.run(book_one())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    result = runner.invoke(app, ["export", "bookings", "demo"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # the counts go to stderr
    assert [(x["reference"], x["sor_code"], x["contact_phone"]) for x in rows] == [
        (ref, "N631111", "07700900001")
    ]
    assert rows[0]["appointment_start"] == start
    assert "export demo: 1 rows read, 1 written, 0 skipped" in result.stderr


def test_the_simulated_councils_config_stays_valid(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """deploy/simulated (demo --with-simulators) names real adaptor options."""
    from gateway.cli import SIMULATOR_SECRETS

    for name, value in SIMULATOR_SECRETS.items():
        monkeypatch.setenv(name, value)
    simulated = DEMO_CONFIG.parent / "simulated"
    result = runner.invoke(app, ["check", "--config-dir", str(simulated)])
    assert result.exit_code == 0, result.output
    assert "lincoln: 3 adaptor(s)" in result.output
    monkeypatch.delenv("DRS_PASSWORD")
    result = runner.invoke(app, ["check", "--config-dir", str(simulated)])
    assert result.exit_code == 1 and "DRS_PASSWORD is not set" in result.output

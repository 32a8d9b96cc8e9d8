"""Triage tables: parsing with file and line for every problem, SoR codes checked against the
council's table, lookups, and imports from both Housing Repairs Online shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from mappings.engine import SorTable, load_table
from mappings.triage import (
    ImportError_,
    TriageLookupError,
    import_ns,
    import_redbridge,
    load_triage,
    parse_triage,
)

REPO = Path(__file__).resolve().parents[2]
SOR = REPO / "mappings" / "examples" / "demo-sor.csv"
TRIAGE = REPO / "mappings" / "examples" / "demo.triage.yaml"
runner = CliRunner()


def table() -> SorTable:
    return load_table(SOR)


def test_the_example_table_is_valid_against_the_demo_sor_table() -> None:
    triage = load_triage(TRIAGE, table())
    tenant = triage.tree("tenant")
    assert tenant is not None
    leaf = tenant.resolve("kitchen", "cupboards", "doorHangingOff")
    assert leaf.sor_code == "N373049" and leaf.outcome is None
    assert tenant.resolve("outside", "gasSmell").outcome == "emergency"
    assert set(triage.trees) == {"tenant", "communal", "leasehold"}


def test_lookups_are_exact_and_name_the_field() -> None:
    tenant = load_triage(TRIAGE).tree("tenant")
    assert tenant is not None
    for args, field in [
        (("Kitchen", "cupboards", "doorHangingOff"), "repairLocation"),  # case-sensitive
        (("kitchen", "nothing", None), "repairProblem"),
        (("kitchen", "cupboards", None), "repairIssue"),  # this problem has issues
        (("kitchen", "cupboards", "nothing"), "repairIssue"),
        (("kitchen", "sink", "tap"), "repairIssue"),  # this one has none
    ]:
        with pytest.raises(TriageLookupError) as err:
            tenant.resolve(*args)
        assert err.value.field == field


def test_every_problem_is_reported_with_its_line() -> None:
    text = """tenant:
  - value: kitchen
    display: Kitchen
    options:
      - {value: sink, display: Sink, sor_code: NOPE001}
      - {value: sink, display: Again, sor_code: N631111}
      - {value: tap, display: Tap}
      - {value: door, display: Door, sor_code: N373049, outcome: emergency}
      - {value: bin, display: Bin, outcome: explode}
      - {value: lock, display: Lock, sor_code: DEMO003}
      - {value: fan, display: Fan, sor_code: N841007, priority: whenever}
      - {value: light, sor_code: N858111, colour: red}
  - {value: hall, display: Hall, sor_code: N858111}
  - value: deep
    display: Deep
    options:
      - value: a
        display: A
        options:
          - value: b
            display: B
            options: [{value: c, display: C, sor_code: N858111}]
garden: []
"""
    _, errors = parse_triage(text, "t.yaml", table())
    by_line = {(e.line, e.message.split(" (")[0]) for e in errors}
    messages = "\n".join(str(e) for e in errors)
    assert (6, "duplicate value 'sink'") in by_line, messages
    assert any(e.line == 7 and "exactly one of sor_code and outcome" in e.message for e in errors)
    assert any(e.line == 8 and "exactly one" in e.message for e in errors)
    assert any(e.line == 9 and "unknown outcome 'explode'" in e.message for e in errors)
    assert any(e.line == 11 and "bad priority" in e.message for e in errors)
    assert any(e.line == 12 and e.column == "colour" for e in errors)
    assert any(e.line == 12 and e.column == "display" for e in errors)
    assert any(e.line == 13 and "a location needs options" in e.message for e in errors)
    assert any("at most three levels" in e.message for e in errors)
    assert any(e.line == 23 and "unknown repair type" in e.message for e in errors)
    assert any(e.line == 5 and "NOPE001" in e.message and "SoR table" in e.message for e in errors)
    assert any(e.line == 10 and "DEMO003" in e.message and "disabled" in e.message for e in errors)
    assert all(str(e).startswith("t.yaml:") for e in errors)


def test_import_redbridge_sorconfig() -> None:
    sor_config = {
        "kitchen": {
            "cupboards": {"doorHangingOff": "N373049", "doorMissing": "N373049"},
            "worktop": "N324123",
        },
        "bathroom": {"bath": {"sealant": "N630945"}},
    }
    tree = import_redbridge(sor_config)
    assert tree[0]["value"] == "kitchen" and tree[0]["display"] == "Kitchen"
    cupboards = tree[0]["options"][0]
    assert cupboards["options"][0] == {
        "value": "doorHangingOff",
        "display": "Door hanging off",
        "sor_code": "N373049",
    }
    assert tree[0]["options"][1] == {
        "value": "worktop",
        "display": "Worktop",
        "sor_code": "N324123",
    }
    with pytest.raises(ImportError_):
        import_redbridge({"kitchen": "N373049"})  # a location must have problems


def test_import_ns_configuration() -> None:
    config = [
        {
            "value": "kitchen",
            "display": "Kitchen",
            "options": [
                {"value": "sink", "display": "Sink", "sorCode": "DEMO001", "priority": "N"},
                {"value": "Emergency", "display": "Smell of gas"},
                {"value": "ContactUs", "display": "Something else"},
                {"value": "tap", "display": "Tap", "sorCode": "DEMO001", "priority": "P9"},
            ],
        }
    ]
    tree, warnings = import_ns(config)
    options = tree[0]["options"]
    assert options[0] == {
        "value": "sink",
        "display": "Sink",
        "sor_code": "DEMO001",
        "priority": "normal",
    }
    assert options[1]["outcome"] == "emergency" and options[2]["outcome"] == "contact_us"
    assert "priority" not in options[3] and warnings and "P9" in warnings[0]
    with pytest.raises(ImportError_):
        import_ns([{"value": "kitchen", "options": [{"value": "sink"}]}])


def test_cli_import_and_validate(tmp_path: Path) -> None:
    red = tmp_path / "SoRConfig.json"
    red.write_text(json.dumps({"kitchen": {"cupboards": {"doorHangingOff": "N373049"}}}))
    ns = tmp_path / "communal.json"
    ns.write_text(
        json.dumps(
            [
                {
                    "value": "stairs",
                    "display": "Stairs",
                    "options": [
                        {
                            "value": "light",
                            "display": "Light",
                            "sorCode": "N858111",
                            "priority": "U",
                        }
                    ],
                }
            ]
        )
    )
    out = tmp_path / "council.triage.yaml"
    result = runner.invoke(
        app,
        [
            "triage",
            "import",
            "--tenant",
            str(red),
            "--communal",
            str(ns),
            "--sor",
            str(SOR),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    triage = load_triage(out, table())
    assert triage.tree("communal").resolve("stairs", "light").priority == "urgent"  # type: ignore[union-attr]
    result = runner.invoke(app, ["triage", "validate", str(out), "--sor", str(SOR)])
    assert result.exit_code == 0 and "valid" in result.output, result.output
    # a code the council's table lacks stops the import, naming it
    red.write_text(json.dumps({"kitchen": {"cupboards": {"doorHangingOff": "ZZ99999"}}}))
    result = runner.invoke(app, ["triage", "import", "--tenant", str(red), "--sor", str(SOR)])
    assert result.exit_code == 1 and "ZZ99999" in result.output
    result = runner.invoke(app, ["triage", "validate", str(TRIAGE), "--sor", str(SOR)])
    assert result.exit_code == 0, result.output


def test_cli_hash_identifier() -> None:
    result = runner.invoke(app, ["hro", "hash-identifier"], input="abc\n")
    assert result.exit_code == 0
    assert result.output.strip().startswith("sha256:") and len(result.output.strip()) == 71

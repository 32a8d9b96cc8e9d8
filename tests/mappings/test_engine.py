from __future__ import annotations

from pathlib import Path

import pytest

from mappings.engine import MappingTableError, load_table, parse_table
from repairs_gateway_sdk.model import JobSize, Priority, Trade
from tests.gatewaykit import DEMO_SOR, SHARED

HEADER = "sor_code,description,trade,size,duration_minutes,priority,enabled\n"


def test_mixed_code_styles_resolve_case_insensitively() -> None:
    table, errors = parse_table(
        HEADER + "373049,NHF code,JO,small,,,\n"
        "N373049,Prefixed,CA,medium,90,U,yes\n"
        "des5r004,Local,MU,small,,emergency,\n"
    )
    assert errors == []
    assert table.get("373049").trade is Trade.CARPENTRY  # type: ignore[union-attr]
    m = table.get(" n373049 ")
    assert m is not None and m.size is JobSize.MEDIUM and m.duration_minutes == 90
    assert m.priority is Priority.URGENT
    assert table.get("DES5R004").priority is Priority.EMERGENCY  # type: ignore[union-attr]
    assert table.get("unknown") is None


def test_every_problem_is_reported_with_its_line() -> None:
    _, errors = parse_table(
        HEADER + "A1,ok,PL,small,,,\n"
        "A1,dup,PL,small,,,\n"
        "B2,bad trade,ZZ,small,,,\n"
        "C3,bad size,PL,huge,,,\n"
        "D4,bad duration,PL,small,-5,,\n"
        "E5,bad priority,PL,small,,X,\n"
        ",empty,PL,small,,,\n",
        source="t.csv",
    )
    text = [str(e) for e in errors]
    assert text[0].startswith("t.csv:3: sor_code: duplicate code 'A1' (first on line 2)")
    assert any(t.startswith("t.csv:4: trade: unknown trade 'ZZ'") for t in text)
    assert any(t.startswith("t.csv:5: size: bad size 'huge'") for t in text)
    assert any(t.startswith("t.csv:6: duration_minutes") for t in text)
    assert any(t.startswith("t.csv:7: priority") for t in text)
    assert any(t.startswith("t.csv:8: sor_code: empty code") for t in text)


def test_missing_columns_and_disabled_codes(tmp_path: Path) -> None:
    _, errors = parse_table("code,trade\nX,PL\n")
    assert [str(e) for e in errors] == ["<table>:1: sor_code: missing required column"]
    table, _ = parse_table(HEADER + "OLD1,old,PL,small,,,no\n")
    assert table.get("OLD1") is not None and table.get("OLD1").enabled is False  # type: ignore[union-attr]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "X,x,QQ,small,,,\n")
    with pytest.raises(MappingTableError) as exc:
        load_table(bad)
    assert "bad.csv:2: trade" in str(exc.value)


def test_demo_table_covers_every_shared_example_code() -> None:
    examples = SHARED / "vendor-contracts" / "sor-examples.csv"
    if not examples.exists():
        pytest.skip("../shared/vendor-contracts is absent (a user's clone); CI always has it")
    import csv

    table = load_table(DEMO_SOR)
    with examples.open() as fh:
        for row in csv.DictReader(fh):
            mapped = table.get(row["sor_code"])
            assert mapped is not None, row["sor_code"]
            from repairs_gateway_sdk.model import parse_trade

            assert mapped.trade is parse_trade(row["trade"]), row["sor_code"]

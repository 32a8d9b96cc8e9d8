"""`repairs-gateway check` catches what would break at start-up, as council IT make the
mistakes (issue 14, part 2): files missing or malformed, Excel's encodings, problems at their
real line with plain wording and suggestions, honest summaries, and `check --connect`
against the simulators with one backend down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.textfiles import TextFileError, decode
from tests.gatewaykit import demo_council, write_config
from tests.simulators import free_port, running_simulator

runner = CliRunner()
HEADER = "property_id,uprn,address_line_1,address_line_2,address_line_3,address_line_4,postcode"


def _check(config_dir: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", "--config-dir", str(config_dir), *extra])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _demo(tmp_path: Path, properties: str | None = None) -> Path:
    council, base = demo_council()
    if properties is not None:
        base["demo-properties.csv"] = properties
    write_config(tmp_path, {"demo": council}, base)
    return tmp_path


def test_a_missing_property_file_is_named_at_its_line(tmp_path: Path) -> None:
    _demo(tmp_path)
    (tmp_path / "demo-properties.csv").unlink()
    code, out = _check(tmp_path)
    assert code == 1
    assert "demo.yaml:" in out and "adaptors.demo_csv.options.properties_file: file" in out
    assert "demo-properties.csv not found" in out
    assert "demo: 1 adaptor(s), 22 SoR codes - 1 problem(s)" in out


def test_duplicate_ids_and_bad_postcodes_are_named_with_their_lines(tmp_path: Path) -> None:
    rows = [HEADER, "P1,,1 High St,,,,LN1 1AA", "P2,,2 High St,,,,NOTAPOSTCODE"]
    rows += ["P1,,1 High St again,,,,LN1 1AA", "P3,,3 High St,,,,LN1 1AA"]
    _demo(tmp_path, "\n".join(rows) + "\n")
    code, out = _check(tmp_path)
    assert code == 1
    assert "demo-properties.csv:4: adaptors.demo_csv.options.properties_file: duplicate " in out
    assert "duplicate property id 'P1' on lines 2, 4" in out
    assert "1 row(s) without a valid UK postcode (the import refuses the file): line 3" in out
    assert "4 rows read, 2 to import" in out
    assert " - ok" not in out


def test_export_layout_counts_rows_skipped_for_bad_postcodes(tmp_path: Path) -> None:
    body = 'PlaceReference,AddressLine,PostCode\nA1,"1 Road, Town",LN1 1AA\nA2,2 Road,XX\n'
    body += "A3,3 Road,\n"
    _demo(tmp_path, body)
    code, out = _check(tmp_path)
    assert code == 0, out  # skipped rows are a warning: the import skips them
    assert "2 row(s) skipped for a postcode that is not a UK postcode: lines 3, 4 (warning)" in out
    assert "3 rows read, 1 to import, skipped: 2 bad postcode" in out
    assert "demo: 1 adaptor(s), 22 SoR codes - ok (1 warning(s))" in out


def test_excel_encodings_are_read_or_refused_with_the_line(tmp_path: Path) -> None:
    council, files = demo_council()
    sor = files["sor.csv"].replace("cupboard door", "cupboard door (£5 part)", 1)
    assert "£" in sor
    # Windows-1252 ("CSV" from Excel on a UK PC) and UTF-16 ("Unicode text") both read
    for encoding in ("cp1252", "utf-16"):
        files["sor.csv"] = sor
        write_config(tmp_path, {"demo": council}, files)
        (tmp_path / "sor.csv").write_bytes(sor.encode(encoding))
        code, out = _check(tmp_path)
        assert code == 0, (encoding, out)
        assert "22 SoR codes - ok" in out
        result = runner.invoke(app, ["mappings", "validate", str(tmp_path / "sor.csv")])
        assert result.exit_code == 0 and "22 codes, valid (read as" in result.output
    # UTF-8 with a BOM: plain
    (tmp_path / "sor.csv").write_bytes(b"\xef\xbb\xbf" + sor.encode())
    assert _check(tmp_path)[0] == 0
    # bytes no encoding can read: refused with the file, line and byte
    bad = sor.encode("utf-8").split(b"\n")
    bad[4] = bad[4] + b"\x81\x8d"
    (tmp_path / "sor.csv").write_bytes(b"\n".join(bad))
    code, out = _check(tmp_path)
    assert code == 1
    assert f"{tmp_path / 'sor.csv'}:5: cannot be read as text (byte 0x81" in out
    result = runner.invoke(app, ["mappings", "validate", str(tmp_path / "sor.csv")])
    assert result.exit_code == 1 and "sor.csv:5: cannot be read as text" in result.output
    assert "Traceback" not in result.output


def test_a_council_yaml_saved_as_windows_1252_is_read(tmp_path: Path) -> None:
    council, files = demo_council(name="Cyngor Sir Ynys Môn (£)")
    write_config(tmp_path, {"demo": council}, files)
    (tmp_path / "demo.yaml").write_bytes(
        yaml.safe_dump(council, allow_unicode=True, sort_keys=False).encode("cp1252")
    )
    code, out = _check(tmp_path)
    assert code == 0, out


def test_decode_refuses_binary() -> None:
    with pytest.raises(TextFileError, match="NUL"):
        decode(b"abc\ndef\x00\x00\x00g" * 3 + b"\x00", "x.csv")


def test_wrong_route_is_at_its_line_with_plain_words(tmp_path: Path) -> None:
    council, files = demo_council()
    council["routes"]["appointments"] = {"default": "demo_cvs"}
    write_config(tmp_path, {"demo": council}, files)
    code, out = _check(tmp_path)
    assert code == 1
    text = (tmp_path / "demo.yaml").read_text().splitlines()
    line = next(i for i, x in enumerate(text, 1) if "demo_cvs" in x)
    assert (
        f"demo.yaml:{line}: routes.appointments.default: names adaptor 'demo_cvs', which is "
        "not defined under adaptors (did you mean 'demo_csv'?)"
    ) in out
    assert "Value error" not in out


def test_misspelt_keys_get_a_suggestion(tmp_path: Path) -> None:
    council, files = demo_council()
    council["adaptors"]["demo_csv"]["options"]["calender"] = council["adaptors"]["demo_csv"][
        "options"
    ].pop("calendar")
    council["adaptors"]["demo_csv"]["options"]["calender"]["capcity"] = 3
    write_config(tmp_path, {"demo": council}, files)
    code, out = _check(tmp_path)
    assert code == 1
    assert (
        "adaptors.demo_csv.options.calender: unknown key 'calender' (did you mean 'calendar'?)"
        in out
    )
    assert "Extra inputs are not permitted" not in out
    council, files = demo_council(page_sise=10)
    write_config(tmp_path, {"demo": council}, files)
    code, out = _check(tmp_path)
    assert code == 1
    assert "page_sise: unknown key 'page_sise' (did you mean 'page_size'?)" in out


def test_the_summary_is_not_ok_when_the_sor_table_has_errors(tmp_path: Path) -> None:
    council, files = demo_council()
    files["sor.csv"] += "N999999,Nonsense,nonsense-trade,small,,,\n"
    write_config(tmp_path, {"demo": council}, files)
    code, out = _check(tmp_path)
    assert code == 1 and "unknown trade 'nonsense-trade'" in out
    assert "- ok" not in out and "1 problem(s)" in out


# -- check --connect ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, str]]:
    with (
        running_simulator("adaptors.civica_uh.simulator") as uh,
        running_simulator("adaptors.totalmobile.simulator") as tm,
    ):
        yield {"uh": uh, "tm": tm}


def _lincoln(sims: dict[str, str], drs_port: int, tm_secret: str) -> dict[str, object]:
    body = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy/simulated/lincoln.yaml").read_text()
    )
    body.pop("hro", None)
    body["mappings"] = "sor.csv"
    uh = body["adaptors"]["uh"]["options"]
    for k in ("property_wsdl", "property_endpoint", "repair_endpoint"):
        uh[k] = uh[k].replace("http://127.0.0.1:8101", sims["uh"])
    uh["password"] = "secret"
    drs = body["adaptors"]["drs"]["options"]
    for k in ("wsdl", "endpoint"):
        drs[k] = drs[k].replace("8102", str(drs_port))
    drs["password"] = "drs-secret"
    drs["timeout_seconds"] = 2
    tm = body["adaptors"]["tm"]["options"]
    tm["base_url"], tm["client_secret"] = sims["tm"], tm_secret
    return body


def test_check_connect_reports_each_backend_with_one_down(
    tmp_path: Path, sims: dict[str, str]
) -> None:
    _, files = demo_council()
    dead = free_port()  # nothing listens there: DRS is "down"
    write_config(tmp_path, {"lincoln": _lincoln(sims, dead, "wrong-secret")}, files)
    code, out = _check(tmp_path, "--connect", "--timeout", "10")
    assert code == 1, out
    table = {line.split()[1]: line for line in out.splitlines() if line.startswith("lincoln ")}
    assert " ok " in table["uh"]
    assert "FAILED" in table["drs"] and "connection refused" in table["drs"]
    assert "FAILED" in table["tm"] and "credentials" in table["tm"]
    assert "[3/3]" in out  # progress while it runs
    assert "2 backend(s) could not be reached" in out
    assert "wrong-secret" not in out


def test_start_failure_reasons_at_serve_are_as_clear_as_checks(tmp_path: Path) -> None:
    from gateway.runtime import Runtime
    from gateway.settings import Settings

    rows = [HEADER, "P1,,1 High St,,,,LN1 1AA", "P1,,1 High St again,,,,LN1 1AA"]
    council, files = demo_council()
    files["demo-properties.csv"] = "\n".join(rows) + "\n"
    write_config(tmp_path / "c", {"demo": council}, files)

    async def run() -> dict[str, str | None]:
        rt = Runtime(
            Settings(
                config_dir=tmp_path / "c",
                data_dir=tmp_path / "d",
                database_url=f"sqlite:///{tmp_path / 'g.db'}",
                secret_key="x",
                adaptor_start_grace_seconds=8,
            ),
            run_worker=False,
        )
        await rt.start()
        try:
            return {n: s.reason for n, s in rt.councils["demo"].not_ready.items()}
        finally:
            await rt.stop()

    reasons = asyncio.run(run())
    assert set(reasons) == {"demo_csv"}, reasons
    assert "duplicate property_id: 'P1'" in str(reasons["demo_csv"])
    (tmp_path / "c" / "demo-properties.csv").unlink()
    reasons = asyncio.run(run())
    assert reasons["demo_csv"] == "the property file was not found"

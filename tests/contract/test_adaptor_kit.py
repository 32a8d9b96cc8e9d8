"""The adaptor suite, run as a supplier runs it, against every in-tree adaptor."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.contract.kit import contract_config, output, run_kit

CSV = contract_config("csv_fallback")
CSV_PROPERTIES = CSV.parent / "contract-properties.csv"

IN_TREE = ["csv_fallback", "civica_uh", "kirona_drs", "totalmobile"]


@pytest.mark.parametrize("adaptor", IN_TREE)
def test_in_tree_adaptor_passes_the_suite(adaptor: str) -> None:
    try:
        importlib.import_module(f"adaptors.{adaptor}")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not ready yet"
        pytest.skip(f"adaptors.{adaptor} cannot be imported yet ({type(exc).__name__}: {exc})")
    config = contract_config(adaptor)
    assert config.exists(), f"{config} is missing: every in-tree adaptor needs a contract config"
    done = run_kit("--adaptor", adaptor, "--adaptor-config", str(config))
    assert done.returncode == 0, output(done)
    assert " passed" in done.stdout and "error" not in done.stdout.splitlines()[-1], output(done)


def test_exemptions_are_reported_with_their_reason() -> None:
    done = run_kit("--adaptor-config", str(CSV))
    assert done.returncode == 0, output(done)
    assert "SKIPPED" in done.stdout and "exempt: no network calls" in done.stdout, output(done)


def _variant(tmp_path: Path, text: str) -> Path:
    base = (CSV).read_text()
    cfg = tmp_path / "variant.yaml"
    (tmp_path / CSV_PROPERTIES.name).write_text(CSV_PROPERTIES.read_text())
    cfg.write_text(base + text)
    return cfg


def test_an_exemption_without_a_reason_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "type: csv_fallback\noptions: {properties_file: x.csv}\n"
        "capabilities_exempt:\n  test_timeout_is_honoured:\n"
    )
    done = run_kit("--adaptor-config", str(cfg))
    assert done.returncode == 4, output(done)  # usage error
    assert "test_timeout_is_honoured: an exemption needs a written reason" in done.stderr


def test_an_exemption_naming_no_test_is_refused(tmp_path: Path) -> None:
    cfg = _variant(tmp_path, '  test_no_such_thing: "typo"\n')
    done = run_kit("--adaptor-config", str(cfg))
    assert done.returncode != 0 and "unknown test(s): test_no_such_thing" in output(done)


def test_a_failing_check_names_what_to_fix(tmp_path: Path) -> None:
    """Without its exemption the CSV fallback fails the timeout check, saying what to do."""
    text = (CSV).read_text()
    cfg = tmp_path / "strict.yaml"
    cfg.write_text(text[: text.index("capabilities_exempt:")])
    (tmp_path / CSV_PROPERTIES.name).write_text(CSV_PROPERTIES.read_text())
    done = run_kit("--adaptor-config", str(cfg), "-k", "timeout")
    assert done.returncode == 1, output(done)
    assert "give fixtures.timeout.options" in done.stdout, output(done)
    assert "or exempt test_timeout_is_honoured with a written reason" in done.stdout


def test_structure_only_with_just_the_type() -> None:
    done = run_kit("--adaptor", "csv_fallback", "-k", "not readme")
    assert done.returncode == 0, output(done)
    assert "3 passed" in done.stdout, output(done)  # behavioural checks skip: no config


def test_unknown_type_is_reported() -> None:
    done = run_kit("--adaptor", "no_such_adaptor", "-k", "entry_point")
    assert done.returncode == 1
    assert "no entry point 'no_such_adaptor'" in done.stdout, output(done)

"""Progress and counts on long commands (gateway/progress.py): a live line on a terminal, one
summary line otherwise (rows read, imported, skipped by reason); the property import
(`repairs-gateway properties import`) and `export bookings` use it."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from gateway.progress import Progress
from tests.gatewaykit import demo_council, write_config
from tests.processes import clean_env
from tests.simulators import ROOT


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_one_summary_line_with_counts_by_reason() -> None:
    out = io.StringIO()
    p = Progress("properties demo:demo_csv", stream=out)
    assert not p.tty
    p.imported(20_000)
    p.skipped("bad postcode")
    p.skipped("bad postcode")
    p.skipped("no PlaceReference")
    p.imported(5)
    assert out.getvalue() == ""  # nothing while it runs
    p.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()
    assert lines[0].startswith(
        "properties demo:demo_csv: 20,008 rows read, 20,005 imported, 3 skipped "
        "(2 bad postcode, 1 no PlaceReference) in "
    )


def test_a_terminal_gets_a_live_line_with_rate_and_time_left() -> None:
    out = FakeTerminal()
    with Progress("export demo", verb="written", total=10, stream=out, interval=0) as p:
        for _ in range(4):
            p.imported()
        live = out.getvalue()
        assert live.startswith("\r") and live.count("\r") >= 4
        last = live.rsplit("\r", 1)[1]
        assert "4/10 rows read, 4 written" in last and "rows/s" in last and "left" in last
    text = out.getvalue()
    assert text.endswith("\n")
    final = text.rsplit("\r", 1)[1]
    assert final.startswith("export demo: 4 rows read, 4 written, 0 skipped in ")


def test_an_error_still_ends_with_the_counts_so_far() -> None:
    out = io.StringIO()
    try:
        with Progress("properties x:y", stream=out) as p:
            p.imported(7)
            raise ValueError("duplicate")
    except ValueError:
        pass
    assert (
        out.getvalue().splitlines() == [out.getvalue().strip()]
        and "7 imported, 0 skipped in" in out.getvalue()
    )
    assert out.getvalue().strip().endswith("(stopped by an error)")


def _export_layout(path: Path, good: int) -> None:
    rows = ["PlaceReference,AddressLine,PostCode"]
    rows += [f"P{i:06d},{i} High Street,LN1 1AA" for i in range(good)]
    rows += ["P999990,1 Nowhere,NOT A POSTCODE", "P999991,2 Nowhere,XX", ",3 Lost Lane,LN1 1AA"]
    path.write_text("\n".join(rows) + "\n")


def _config(tmp_path: Path, good: int) -> tuple[Path, dict[str, str]]:
    council, files = demo_council()
    files.pop("demo-properties.csv")
    config = tmp_path / "config"
    write_config(config, {"demo": council}, files)
    _export_layout(config / "demo-properties.csv", good)
    env = clean_env(GATEWAY_DATA_DIR=str(tmp_path / "data"), GATEWAY_SECRET_KEY="progress-test")
    return config, env


def test_property_import_command_prints_one_summary_line_when_not_a_terminal(
    tmp_path: Path,
) -> None:
    config, env = _config(tmp_path, 45_000)
    argv = [sys.executable, "-m", "gateway.cli", "properties", "import", "--config-dir"]
    done = subprocess.run(  # noqa: S603
        [*argv, str(config)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "\r" not in done.stderr, done.stderr
    assert lines[0].startswith(
        "properties demo:demo_csv: 45,003 rows read, 45,000 imported, 3 skipped "
        "(2 bad postcode, 1 no PlaceReference) in "
    ), lines
    # one index per property file (shared by the councils that read it), named after it
    assert [p.name[:16] for p in (tmp_path / "data" / "csv_fallback").glob("*.sqlite")] == [
        "demo-properties-"
    ]
    # current now: left alone, and said so
    again = subprocess.run(  # noqa: S603
        [*argv, str(config)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "index is current" in again.stderr


def test_property_import_command_shows_live_progress_on_a_terminal(tmp_path: Path) -> None:
    config, env = _config(tmp_path, 45_000)
    master, slave = pty.openpty()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gateway.cli", "properties", "import", "--config-dir", str(config)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 0
    text = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's own newlines
    assert "\r" in text and "rows/s" in text, text
    final = text.rsplit("\r", 1)[1].strip()
    assert re.match(
        r"properties demo:demo_csv: 45,003 rows read, 45,000 imported, 3 skipped "
        r"\(2 bad postcode, 1 no PlaceReference\) in ",
        final,
    ), final


def test_export_bookings_counts_on_stderr_and_keeps_stdout_clean(tmp_path: Path) -> None:
    config, env = _config(tmp_path, 10)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "gateway.cli", "export", "bookings", "demo", "--config-dir"]
        + [str(config)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("reference,status,")
    assert len(done.stdout.splitlines()) == 1
    summary = [line for line in done.stderr.splitlines() if line.startswith("export demo:")]
    assert summary and summary[0].startswith("export demo: 0 rows read, 0 written, 0 skipped")

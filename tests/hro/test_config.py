"""The hro: block, checked by `repairs-gateway check` like the rest of a council's file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.hro.config import hash_identifier
from tests.gatewaykit import demo_council, running_gateway, write_config
from tests.hro.kit import IDENTIFIER, NewarkSherwood, hro_council

runner = CliRunner()


def check(tmp_path: Path, **hro: Any) -> tuple[int, str]:
    body, files = demo_council()
    body, files = hro_council(body, files, **hro)
    write_config(tmp_path / "config", {"demo": body}, files)
    result = runner.invoke(app, ["check", "--config-dir", str(tmp_path / "config")])
    return result.exit_code, result.output


def test_auth_none_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    code, out = check(tmp_path, auth="none")
    assert code == 0, out
    assert "hro.auth" in out and "private network" in out and "(warning)" in out


def test_token_auth_needs_a_usable_identifier(tmp_path: Path) -> None:
    code, out = check(tmp_path, identifier=None)
    assert code == 1 and "needs an identifier" in out, out
    code, out = check(tmp_path / "b", identifier="short")
    assert code == 1 and "at least 16" in out, out
    code, out = check(tmp_path / "c", identifier="has spaces & ampersands ok?")
    assert code == 1 and "query string" in out, out
    code, out = check(tmp_path / "d", identifier=hash_identifier(IDENTIFIER))
    assert code == 0, out


def test_triage_problems_name_file_and_line(tmp_path: Path) -> None:
    body, files = demo_council()
    body, files = hro_council(body, files)
    files["t.triage.yaml"] = files["t.triage.yaml"].replace("sor_code: N373049", "sor_code: ZZ999")
    write_config(tmp_path / "config", {"demo": body}, files)
    result = runner.invoke(app, ["check", "--config-dir", str(tmp_path / "config")])
    assert result.exit_code == 1
    assert "t.triage.yaml:11: sor_code: SoR code 'ZZ999' is not in the SoR table" in result.output
    body["hro"]["triage"] = "missing.triage.yaml"
    write_config(tmp_path / "config", {"demo": body}, files)
    result = runner.invoke(app, ["check", "--config-dir", str(tmp_path / "config")])
    assert result.exit_code == 1 and "hro.triage" in result.output and "not found" in result.output


@pytest.mark.parametrize("stored", ["clear", "hashed"])
async def test_the_identifier_may_be_stored_hashed(tmp_path: Path, stored: str) -> None:
    body, files = demo_council()
    identifier = IDENTIFIER if stored == "clear" else hash_identifier(IDENTIFIER)
    body, files = hro_council(body, files, identifier=identifier)
    async with running_gateway(tmp_path, {"demo": body}, files) as gw:
        fe = NewarkSherwood(gw.client_for(None), "/hro/demo")
        r = await fe.addresses("Tenant", "LN1 1AA")
        assert r.status_code == 200, r.text
        bad = NewarkSherwood(gw.client_for(None), "/hro/demo", identifier=identifier)
        if stored == "hashed":  # the hash itself is not the identifier
            r = await bad.http.post(f"/hro/demo/authentication?identifier={identifier}")
            assert r.status_code == 401

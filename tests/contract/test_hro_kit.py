"""The HRO facade suite of the contract kit, run against the gateway served on loopback: the
N&S flavour (token) on one council, the Redbridge flavour (no credentials) on another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.contract.kit import Gateway, demo_config_dir, output, run_kit, served_gateway
from tests.hro.kit import IDENTIFIER, TRIAGE


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("served")
    config = demo_config_dir(root / "config")
    demo = yaml.safe_load((config / "demo.yaml").read_text())
    (config / "demo.triage.yaml").write_text(TRIAGE.read_text())
    demo["hro"] = {"auth": "token", "identifier": IDENTIFIER, "triage": "demo.triage.yaml"}
    (config / "demo.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    demo["hro"] = {"auth": "none", "triage": "demo.triage.yaml"}
    (config / "open.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    with served_gateway(config, root / "data", "demo") as gw:
        yield gw


def test_ns_flavour_read_only(gateway: Gateway) -> None:
    done = run_kit("--hro-base-url", f"{gateway.base_url}/hro/demo", "--hro-identifier", IDENTIFIER)
    assert done.returncode == 0, output(done)
    assert "writes (bookings) only with --write" in done.stdout, output(done)


def test_ns_flavour_with_writes(gateway: Gateway) -> None:
    done = run_kit(
        "--hro-base-url",
        f"{gateway.base_url}/hro/demo",
        "--hro-identifier",
        IDENTIFIER,
        "--write",
    )
    assert done.returncode == 0, output(done)
    assert "failed" not in done.stdout.splitlines()[-1], output(done)


def test_redbridge_flavour_with_writes(gateway: Gateway, tmp_path: Path) -> None:
    cfg = tmp_path / "hro.yaml"
    cfg.write_text("postcode: LN1 1AA\ntenant_property: '00012346'\n")
    done = run_kit(
        "--hro-base-url", f"{gateway.base_url}/hro/open", "--hro-config", str(cfg), "--write"
    )
    assert done.returncode == 0, output(done)


def test_a_wrong_identifier_fails_clearly(gateway: Gateway) -> None:
    done = run_kit(
        "--hro-base-url",
        f"{gateway.base_url}/hro/demo",
        "--hro-identifier",
        "not-the-identifier-0000",
        "-k",
        "addresses_answer",
    )
    assert done.returncode == 1 and "POST /authentication: 401" in done.stdout, output(done)


def test_the_api_suite_checks_the_triage_tree(gateway: Gateway) -> None:
    done = run_kit(
        "--api-base-url",
        gateway.base_url,
        "--api-key",
        gateway.key,
        "--api-council",
        "demo",
        "-k",
        "triage",
    )
    assert done.returncode == 0 and "1 passed" in done.stdout, output(done)

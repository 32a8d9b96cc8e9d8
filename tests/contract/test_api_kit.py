"""The HTTP API suite, run against the gateway itself served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.kit import Gateway, demo_config_dir, output, run_kit, served_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("served")
    with served_gateway(demo_config_dir(root / "config"), root / "data", "demo") as gw:
        yield gw


def _api(gw: Gateway, *extra: str) -> list[str]:
    return ["--api-base-url", gw.base_url, "--api-key", gw.key, "--api-council", gw.council, *extra]


def test_read_only_by_default(gateway: Gateway) -> None:
    done = run_kit(*_api(gateway))
    assert done.returncode == 0, output(done)
    assert "writes (bookings) only with --write" in done.stdout, output(done)
    assert "2 skipped" in done.stdout, output(done)


def test_with_writes(gateway: Gateway, tmp_path: Path) -> None:
    cfg = tmp_path / "api.yaml"
    cfg.write_text('postcode: LN1 1AA\nproperty_id: "00012346"\nsor_code: N631111\n')
    done = run_kit(*_api(gateway, "--write", "--api-config", str(cfg)))
    assert done.returncode == 0, output(done)
    assert "skipped" not in done.stdout.splitlines()[-1], output(done)


def test_a_wrong_fixture_fails_clearly(gateway: Gateway) -> None:
    done = run_kit(*_api(gateway, "--api-postcode", "ZZ9 9ZZ", "-k", "normalise"))
    assert done.returncode == 1, output(done)
    assert "no addresses at ZZ9 9ZZ" in done.stdout, output(done)


def test_api_options_must_come_together() -> None:
    done = run_kit("--api-base-url", "http://127.0.0.1:9")
    assert done.returncode == 4 and "--api-key" in done.stderr, output(done)

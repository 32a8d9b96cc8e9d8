from __future__ import annotations

import pytest

from tests.contract.kit import SideEnv, can_build_wheels, make_side_env


@pytest.fixture(scope="session")
def side_env(tmp_path_factory: pytest.TempPathFactory) -> SideEnv:
    if not can_build_wheels():
        pytest.skip(
            "installing an adaptor package needs setuptools>=70.1 or the 'wheel' package in "
            "the project environment (add 'wheel' to the dev extras)"
        )
    return make_side_env(tmp_path_factory.mktemp("side-env") / "venv")

"""Structural checks: they need only the adaptor type (``--adaptor TYPE``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract_tests.spec import AdaptorSpec
from contract_tests.structure import (
    check_bases,
    check_config,
    check_readme,
    load_entry_point,
)
from gateway.plugins import discover
from repairs_gateway_sdk.adaptor import Adaptor


def _ok(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_registered_through_entry_point(contract_adaptor_type: str) -> None:
    cls, problems = load_entry_point(contract_adaptor_type)
    _ok(problems)
    registry = discover(refresh=True)
    assert registry.types.get(contract_adaptor_type) is cls, (
        f"the gateway's plugin discovery does not see {contract_adaptor_type!r}: "
        f"{registry.errors.get(contract_adaptor_type, 'not registered')}"
    )


def test_capability_bases(
    contract_adaptor_class: type[Adaptor], contract_adaptor_type: str
) -> None:
    _ok(check_bases(contract_adaptor_class, contract_adaptor_type))


def test_config_is_strict_with_secret_strings(contract_adaptor_class: type[Adaptor]) -> None:
    _ok(check_config(contract_adaptor_class))


def test_readme_mentions_every_option(contract_adaptor_class: type[Adaptor]) -> None:
    _ok(check_readme(contract_adaptor_class))


def test_options_validate_and_typos_are_refused(
    contract_adaptor_class: type[Adaptor], contract_spec: AdaptorSpec
) -> None:
    from contract_tests.spec import substitute

    options = substitute(contract_spec.options, {"port": "1"}, env=True)
    try:
        contract_adaptor_class.Config.model_validate(options)
    except ValidationError as exc:
        pytest.fail(f"the contract options do not validate:\n{exc}", pytrace=False)
    with pytest.raises(ValidationError):
        contract_adaptor_class.Config.model_validate({**options, "no_such_option_typo": 1})

"""Structural checks: they need only the adaptor type (``--adaptor TYPE``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from repairs_gateway_sdk.adaptor import Adaptor
from repairs_gateway_sdk.testing.spec import AdaptorSpec
from repairs_gateway_sdk.testing.structure import (
    check_bases,
    check_config,
    check_readme,
    load_entry_point,
)


def _ok(problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_registered_through_entry_point(contract_adaptor_type: str) -> None:
    """Found the way the gateway finds it: one entry point of that name in the
    ``repairs_gateway.adaptors`` group, loading an ``Adaptor`` subclass."""
    cls, problems = load_entry_point(contract_adaptor_type)
    _ok(problems)
    assert cls is not None and cls.__module__.split(".")[0] != "repairs_gateway_sdk", (
        f"{contract_adaptor_type!r} points at a class of the SDK itself, not an adaptor"
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
    from repairs_gateway_sdk.testing.spec import substitute

    options = substitute(contract_spec.options, {"port": "1"}, env=True)
    try:
        contract_adaptor_class.Config.model_validate(options)
    except ValidationError as exc:
        pytest.fail(f"the contract options do not validate:\n{exc}", pytrace=False)
    with pytest.raises(ValidationError):
        contract_adaptor_class.Config.model_validate({**options, "no_such_option_typo": 1})

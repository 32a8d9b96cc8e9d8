"""AddressSource: what the gateway relies on when it lists properties at a postcode."""

from __future__ import annotations

import pytest

from repairs_gateway_sdk.adaptor import AddressSource
from repairs_gateway_sdk.model import Property
from repairs_gateway_sdk.postcodes import normalise_postcode
from repairs_gateway_sdk.testing.checks import Run
from repairs_gateway_sdk.testing.spec import Fixtures


def _postcode(fx: Fixtures) -> str:
    if not fx.postcode:
        pytest.fail("an AddressSource needs fixtures.postcode (a postcode with properties)")
    pc = normalise_postcode(fx.postcode)
    assert pc, f"fixtures.postcode {fx.postcode!r} is not a UK postcode"
    return pc


def _property_id(fx: Fixtures) -> str:
    if not fx.property_id:
        pytest.fail("an AddressSource needs fixtures.property_id (a property that exists)")
    return fx.property_id


def test_addresses_at_postcode_are_normalised(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    pc = _postcode(contract_fixtures)
    found = contract_run(contract_address_source.addresses(pc))
    assert isinstance(found, list) and found, f"no properties at fixtures.postcode {pc}"
    for p in found:
        assert isinstance(p, Property), f"addresses() returned {type(p).__name__}, not Property"
        assert p.postcode == pc, (
            f"property {p.id}: postcode {p.postcode!r} is not the normalised {pc!r}"
        )
        assert isinstance(p.id, str) and p.id.strip() == p.id and p.id, f"bad id {p.id!r}"
        assert p.address_lines and all(isinstance(x, str) and x.strip() for x in p.address_lines), (
            f"property {p.id}: address_lines must be non-empty strings: {p.address_lines!r}"
        )
        assert p.uprn is None or (isinstance(p.uprn, str) and p.uprn.isdigit()), (
            f"property {p.id}: uprn must be a string of digits: {p.uprn!r}"
        )
    ids = [p.id for p in found]
    assert len(ids) == len(set(ids)), f"the same property is listed twice at {pc}: {ids}"


def test_ineligible_properties_say_why(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    for p in contract_run(contract_address_source.addresses(_postcode(contract_fixtures))):
        if not p.online_repairs:
            assert p.ineligible_reason and p.ineligible_reason.strip(), (
                f"property {p.id} cannot be reported online but gives no ineligible_reason"
            )


def test_known_property_by_id_keeps_its_exact_id(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    pid = _property_id(contract_fixtures)
    p = contract_run(contract_address_source.get_property(pid))
    assert p is not None, f"get_property({pid!r}) found nothing for fixtures.property_id"
    assert p.id == pid, f"get_property({pid!r}) answered id {p.id!r} (zero padding matters)"
    assert normalise_postcode(p.postcode) == p.postcode, f"postcode {p.postcode!r} not normalised"


def test_listed_properties_are_found_by_id(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    for listed in contract_run(contract_address_source.addresses(_postcode(contract_fixtures)))[:5]:
        again = contract_run(contract_address_source.get_property(listed.id))
        assert again is not None and again.id == listed.id, (
            f"property {listed.id} is listed at its postcode but get_property cannot find it"
        )


def test_unknown_property_is_none(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    unknown = contract_fixtures.unknown_property_id
    assert contract_run(contract_address_source.get_property(unknown)) is None, (
        f"get_property({unknown!r}) must answer None for a property that does not exist"
    )


def test_postcode_without_properties_is_an_empty_list(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    pc = normalise_postcode(contract_fixtures.empty_postcode)
    assert pc, f"fixtures.empty_postcode {contract_fixtures.empty_postcode!r} is not a postcode"
    assert contract_run(contract_address_source.addresses(pc)) == [], (
        f"addresses({pc!r}) must be an empty list, not an error, when nothing is there"
    )


def test_operative_notes_are_codes(
    contract_address_source: AddressSource, contract_fixtures: Fixtures, contract_run: Run
) -> None:
    notes = contract_run(contract_address_source.operative_notes(_property_id(contract_fixtures)))
    assert isinstance(notes, list) and all(isinstance(n, str) for n in notes), (
        f"operative_notes() must be a list of strings, got {notes!r}"
    )

"""The standard repairs API v1, checked at a base URL. Read-only unless ``--write``."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import httpx

from contract_tests.plugin import ApiTarget

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
ADDRESS_KEYS = {
    "id",
    "uprn",
    "address_lines",
    "postcode",
    "kind",
    "parent_id",
    "online_repairs",
    "ineligible_reason",
}
SLOT_KEYS = {"start", "end", "label", "best", "slot_token"}
REPAIR_KEYS = {
    "reference",
    "council",
    "status",
    "property_id",
    "sor_code",
    "trade",
    "size",
    "priority",
    "communal",
    "description",
    "appointment",
    "works_order_reference",
    "created_at",
}
KINDS = {"dwelling", "communal_block", "communal_area", "estate"}
STATUSES = {"awaiting_appointment", "booked", "in_progress", "completed", "cancelled"}


def snake_case_keys(value: Any, where: str = "$") -> list[str]:
    bad: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if not SNAKE.match(str(k)):
                bad.append(f"{where}.{k}")
            bad.extend(snake_case_keys(v, f"{where}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad.extend(snake_case_keys(v, f"{where}[{i}]"))
    return bad


def ok_json(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers.get("content-type", "").startswith("application/json"), (
        f"{r.request.url}: content-type {r.headers.get('content-type')!r}"
    )
    body = r.json()
    bad = snake_case_keys(body)
    assert not bad, f"{r.request.url}: field names not in snake_case: {bad}"
    return body


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem: content type, type/title/status/detail, and the field at fault."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    ctype = r.headers.get("content-type", "")
    assert ctype.startswith("application/problem+json"), f"content-type {ctype!r} for an error"
    body: dict[str, Any] = r.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, f"problem without {key!r}: {body}"
    assert body["status"] == status, f"problem status {body['status']} != HTTP {status}"
    assert isinstance(body["detail"], str) and body["detail"].strip(), "problem without detail"
    if field is not None:
        fields = [str(e.get("field", "")).lower() for e in body.get("errors", [])]
        assert field.lower() in fields, f"the problem does not name field {field!r}: {body}"
    return body


def iso_with_offset(text: str, where: str) -> datetime:
    assert isinstance(text, str) and OFFSET.search(text), f"{where}: {text!r} has no offset"
    t = datetime.fromisoformat(text)
    assert t.utcoffset() is not None, f"{where}: {text!r} is not an aware time"
    return t


def messy(postcode: str) -> str:
    return f" {postcode.replace(' ', '').lower()} "


def slots(api: httpx.Client, t: ApiTarget, **params: Any) -> dict[str, Any]:
    q: dict[str, Any] = {
        "property_id": t.property_id,
        "sor_code": t.sor_code,
        "page_size": t.page_size,
    }
    q.update(params)
    return ok_json(api.get(f"{t.prefix}/appointments", params=q))  # type: ignore[no-any-return]


# -- authentication ----------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401(
    contract_api_anon: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    r = contract_api_anon.get(f"{t.prefix}/addresses", params={"postcode": t.postcode})
    problem(r, 401)
    r = contract_api_anon.get(
        f"{t.prefix}/addresses",
        params={"postcode": t.postcode},
        headers={"Authorization": "Bearer rgw_not_a_real_key"},
    )
    problem(r, 401)


# -- addresses ---------------------------------------------------------------------------------


def test_addresses_normalise_the_postcode(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    body = ok_json(
        contract_api.get(f"{t.prefix}/addresses", params={"postcode": messy(t.postcode)})
    )
    assert body["postcode"] == t.postcode.upper(), f"postcode not normalised: {body['postcode']!r}"
    assert body["council"] == t.council
    assert body["addresses"], f"no addresses at {t.postcode}"
    for a in body["addresses"]:
        missing = ADDRESS_KEYS - set(a)
        assert not missing, f"address {a.get('id')} lacks {sorted(missing)}"
        assert isinstance(a["id"], str), f"id {a['id']!r} must be a string (zero padding)"
        assert a["postcode"] == body["postcode"]
        assert a["kind"] in KINDS, f"unknown kind {a['kind']!r}"
        assert isinstance(a["online_repairs"], bool)
        if not a["online_repairs"]:
            assert a["ineligible_reason"], f"address {a['id']} is ineligible without a reason"
    assert t.property_id in {a["id"] for a in body["addresses"]}, (
        f"property {t.property_id} is not listed at {t.postcode}"
    )


def test_invalid_postcode_is_a_problem_naming_the_field(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    problem(
        contract_api.get(f"{t.prefix}/addresses", params={"postcode": "NOT A CODE"}),
        422,
        "postcode",
    )
    problem(contract_api.get(f"{t.prefix}/addresses"), 422, "postcode")


# -- appointments ------------------------------------------------------------------------------


def test_appointments_are_future_ordered_with_offsets(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    body = slots(contract_api, t)
    assert body["property_id"] == t.property_id and body["council"] == t.council
    assert 0 < len(body["slots"]) <= t.page_size, f"{len(body['slots'])} slots for {t.page_size}"
    now = datetime.now().astimezone()
    times = []
    for s in body["slots"]:
        missing = SLOT_KEYS - set(s)
        assert not missing, f"slot lacks {sorted(missing)}"
        start = iso_with_offset(s["start"], "slot start")
        end = iso_with_offset(s["end"], "slot end")
        assert now < start < end, f"slot {s['start']}..{s['end']} is past or empty"
        assert isinstance(s["slot_token"], str) and s["slot_token"]
        times.append((start, end))
    assert times == sorted(times) and len(set(times)) == len(times), f"slots not ordered: {times}"


def test_cursor_pages_continue_without_repeats(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    first = slots(contract_api, t)
    assert first["next_cursor"], "a first page without next_cursor: cannot check paging"
    second = slots(contract_api, t, cursor=first["next_cursor"])
    both = [
        (iso_with_offset(s["start"], "start"), iso_with_offset(s["end"], "end"))
        for s in first["slots"] + second["slots"]
    ]
    assert second["slots"], "the page after next_cursor is empty"
    assert both == sorted(both) and len(set(both)) == len(both), "pages overlap or go back"


def test_unknown_sor_code_and_property_are_named(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    t = contract_api_target
    body = problem(
        contract_api.get(
            f"{t.prefix}/appointments",
            params={"property_id": t.property_id, "sor_code": t.unknown_sor_code},
        ),
        422,
        "sor_code",
    )
    assert t.unknown_sor_code.upper() in body["detail"].upper(), "the detail should quote the code"
    r = contract_api.get(
        f"{t.prefix}/appointments",
        params={"property_id": t.unknown_property_id, "sor_code": t.sor_code},
    )
    assert r.status_code in (404, 422), r.text
    problem(r, r.status_code, "property_id")


def test_triage_tree_when_the_council_has_one(
    contract_api: httpx.Client, contract_api_target: ApiTarget
) -> None:
    """GET /triage: the council's questions per repair type, each leaf an SoR code or an
    early exit; a council without a triage table answers a 404 problem."""
    t = contract_api_target
    r = contract_api.get(f"{t.prefix}/triage")
    if r.status_code == 404:
        problem(r, 404)
        return
    body = ok_json(r)
    assert set(body["repair_types"]) <= {"tenant", "communal", "leasehold"}, body
    outcomes = {"emergency", "unable_to_book", "not_eligible", "contact_us"}

    def walk(options: list[Any], level: int) -> None:
        assert options and level <= 3
        for o in options:
            assert isinstance(o["value"], str) and isinstance(o["display"], str), o
            if o.get("options"):
                assert "sor_code" not in o and "outcome" not in o, o
                walk(o["options"], level + 1)
            else:
                assert level > 1, f"a location leads to its problems: {o}"
                assert ("sor_code" in o) != ("outcome" in o), o
                assert o.get("outcome") in outcomes | {None}, o

    for tree in body["repair_types"].values():
        walk(tree, 1)


def test_unknown_repair_is_404(contract_api: httpx.Client, contract_api_target: ApiTarget) -> None:
    t = contract_api_target
    problem(contract_api.get(f"{t.prefix}/repairs/ZZZZ-ZZZZ"), 404)


# -- writes (only with --write) ---------------------------------------------------------------


def _body(t: ApiTarget, token: str) -> dict[str, Any]:
    return {
        "property_id": t.property_id,
        "sor_code": t.sor_code,
        "description": "Contract test: kitchen tap dripping",
        "contact": {"phone": t.phone},
        "slot_token": token,
    }


def check_repair(body: dict[str, Any]) -> None:
    missing = REPAIR_KEYS - set(body)
    assert not missing, f"repair lacks {sorted(missing)}"
    assert body["status"] in STATUSES, f"unknown status {body['status']!r}"
    iso_with_offset(body["created_at"], "created_at")
    if body["appointment"] is not None:
        iso_with_offset(body["appointment"]["start"], "appointment start")
        iso_with_offset(body["appointment"]["end"], "appointment end")


def test_book_read_move_cancel(contract_api: httpx.Client, contract_api_write: ApiTarget) -> None:
    t = contract_api_write
    offered = slots(contract_api, t)["slots"]
    assert len(offered) >= 2, "need two slots to test a move"
    key = {"Idempotency-Key": f"contract-{uuid.uuid4()}"}
    created = ok_json(
        contract_api.post(
            f"{t.prefix}/repairs", json=_body(t, offered[0]["slot_token"]), headers=key
        ),
        201,
    )
    check_repair(created)
    ref = created["reference"]
    assert created["status"] == "booked" and created["property_id"] == t.property_id
    assert created["appointment"]["start"] == offered[0]["start"]
    try:
        read = ok_json(contract_api.get(f"{t.prefix}/repairs/{ref}"))
        check_repair(read)
        assert read["reference"] == ref and read["appointment"]["start"] == offered[0]["start"]
        moved = ok_json(
            contract_api.patch(
                f"{t.prefix}/repairs/{ref}", json={"slot_token": offered[-1]["slot_token"]}
            )
        )
        assert moved["appointment"]["start"] == offered[-1]["start"], "the move did not stick"
    finally:
        cancelled = ok_json(
            contract_api.post(f"{t.prefix}/repairs/{ref}/cancel", json={"reason": "contract test"})
        )
    assert cancelled["status"] == "cancelled"
    again = ok_json(contract_api.get(f"{t.prefix}/repairs/{ref}"))
    assert again["status"] == "cancelled"


def test_idempotency_key_replays_and_is_required(
    contract_api: httpx.Client, contract_api_write: ApiTarget
) -> None:
    t = contract_api_write
    offered = slots(contract_api, t)["slots"]
    assert len(offered) >= 2
    body = _body(t, offered[0]["slot_token"])
    key = {"Idempotency-Key": f"contract-{uuid.uuid4()}"}
    first = contract_api.post(f"{t.prefix}/repairs", json=body, headers=key)
    created = ok_json(first, 201)
    try:
        again = contract_api.post(f"{t.prefix}/repairs", json=body, headers=key)
        assert again.status_code == 201 and again.json() == created, (
            "a retry with the same Idempotency-Key must replay the first answer"
        )
        other = contract_api.post(
            f"{t.prefix}/repairs", json=_body(t, offered[1]["slot_token"]), headers=key
        )
        problem(other, 422, "idempotency-key")
        problem(contract_api.post(f"{t.prefix}/repairs", json=body), 422, "idempotency-key")
    finally:
        contract_api.post(
            f"{t.prefix}/repairs/{created['reference']}/cancel", json={"reason": "contract test"}
        )

"""Assertions shared by the suites, with messages that tell a supplier what to fix."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

import pytest

from repairs_gateway_sdk.errors import GatewayError
from repairs_gateway_sdk.model import VendorSlot
from repairs_gateway_sdk.timeutil import now

Run = Callable[[Awaitable[Any]], Any]


def expect_error(
    run: Run, aw: Awaitable[Any], allowed: Sequence[type[GatewayError]], what: str
) -> GatewayError:
    """``aw`` must fail with one of ``allowed`` (the gateway's error taxonomy)."""
    result = answer_or_clear_error(run, aw, allowed, what, must_fail=True)
    assert isinstance(result, GatewayError)
    return result


def check_slot(slot: VendorSlot, start_from: date, where: str) -> None:
    for name in ("start", "end"):
        t: datetime = getattr(slot, name)
        assert t.tzinfo is not None and t.utcoffset() is not None, (
            f"{where}: slot {name} {t.isoformat()} has no UTC offset (times must be aware)"
        )
    assert slot.end > slot.start, f"{where}: slot ends ({slot.end}) before it starts"
    assert slot.start > now(), f"{where}: slot {slot.start.isoformat()} is not in the future"
    from repairs_gateway_sdk.timeutil import london

    assert london(slot.start).date() >= start_from, (
        f"{where}: slot {slot.start.isoformat()} is before the requested day {start_from}"
    )
    assert slot.label.strip(), f"{where}: slot has an empty label"


def through_json(
    vendor: dict[str, Any],
    where: str,
    what: str = "the slot's vendor data",
    carried: str = "the gateway carries it in the slot token and keeps it with the booking",
) -> dict[str, Any]:
    """``vendor`` as the gateway hands it back: a slot's vendor data travels in the signed slot
    token (compact JSON, gateway/tokens.py) and is kept with the booking (JSON), so the adaptor
    is given what JSON makes of it when the slot is booked, moved to or looked up."""
    problem = None
    try:
        text = json.dumps(vendor, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(
            f"{where}: {what} {vendor!r} cannot be written as JSON ({problem}): {carried}. Use "
            "strings, numbers, booleans, None, lists and dicts with string keys (a time as "
            "isoformat(), a set as a sorted list, bytes as base64 text)",
            pytrace=False,
        )
    back: dict[str, Any] = json.loads(text)
    if back != vendor:
        pytest.fail(
            f"{where}: {what} changes on its way through JSON: {vendor!r} comes back as "
            f"{back!r} (tuples become lists, keys become strings), and the adaptor is handed "
            "the second",
            pytrace=False,
        )
    return back


def as_the_gateway_returns_it(slot: VendorSlot, where: str) -> VendorSlot:
    """The slot an adaptor offered, as the gateway gives it back to book (vendor data through
    JSON)."""
    return slot.model_copy(update={"vendor": through_json(slot.vendor, where)})


def check_ordered(slots: Sequence[VendorSlot], where: str) -> None:
    keys = [(s.start, s.end) for s in slots]
    assert keys == sorted(keys), f"{where}: slots are not in (start, end) order: {keys}"
    assert len(set(keys)) == len(keys), f"{where}: the same slot is offered twice"


def same_slot(a: VendorSlot, b: VendorSlot) -> bool:
    return a.start == b.start and a.end == b.end


def answer_or_clear_error(
    run: Run,
    aw: Awaitable[Any],
    allowed: Sequence[type[GatewayError]],
    what: str,
    *,
    must_fail: bool = False,
) -> Any:
    """``aw`` may answer normally (the gateway validated the input before the call), unless
    ``must_fail``; if it fails it must be with one of ``allowed`` and a detail, never a vendor
    or library error."""
    names = ", ".join(c.__name__ for c in allowed)
    expected = f"one of {names}" if must_fail else f"an answer or one of {names}"
    try:
        result = run(aw)
    except GatewayError as exc:
        if not isinstance(exc, tuple(allowed)):
            pytest.fail(
                f"{what}: raised {type(exc).__name__}({exc.detail!r}); expected {expected}",
                pytrace=False,
            )
        assert str(exc.detail).strip(), f"{what}: the error has no detail for the caller"
        return exc
    except Exception as exc:  # noqa: BLE001 - anything else is itself the finding
        pytest.fail(
            f"{what}: raised {type(exc).__module__}.{type(exc).__name__}: {exc}; adaptors must "
            f"raise only repairs_gateway_sdk.errors ({names})",
            pytrace=False,
        )
    if must_fail:
        pytest.fail(f"{what}: returned {result!r}; expected an error ({names})", pytrace=False)
    return result

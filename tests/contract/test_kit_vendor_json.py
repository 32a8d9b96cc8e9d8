"""The kit catches what production would: a slot's ``vendor`` data travels through JSON in the
gateway's slot tokens (gateway/tokens.py), so a value JSON cannot carry (a datetime, a set,
bytes) or one it changes (a tuple) fails the kit instead of the first real booking."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.kit import output, run_kit

ADAPTOR = '''
from datetime import timedelta

from repairs_gateway_sdk.adaptor import AdaptorConfig, Scheduler
from repairs_gateway_sdk.model import (
    BookingConfirmation, RepairStatus, SchedulerStatus, SlotPage, VendorSlot,
)
from repairs_gateway_sdk.timeutil import at_london, parse_clock


class Config(AdaptorConfig):
    vendor: str = "json"  # json | datetime | set | bytes | tuple


class Diary(Scheduler):
    """Two slots a day in memory; ``vendor`` says what it puts in each slot's vendor data."""

    type_name = "vendor_json_probe"
    Config = Config

    def _slot(self, day, n):
        start = at_london(day, parse_clock("08:00" if n == 0 else "12:00"))
        vendor = {"slot": f"{day.isoformat()}-{n}"}
        extra = {
            "json": {},
            "datetime": {"at": start},
            "set": {"crews": {"A", "B"}},
            "bytes": {"key": b"\\x00\\x01"},
            "tuple": {"window": (8, 12)},
        }[self.config.vendor]
        end = start + timedelta(hours=4)
        return VendorSlot(start=start, end=end, label="slot", vendor={**vendor, **extra})

    async def availability(self, query):
        skip = int((query.resume or {}).get("skip", 0))
        slots = [self._slot(query.start_from + timedelta(days=d), n) for d in range(10)
                 for n in (0, 1)]
        page = slots[skip: skip + query.page_size]
        more = skip + query.page_size < len(slots)
        return SlotPage(slots=page, resume={"skip": skip + query.page_size} if more else None)

    async def book(self, order):
        return BookingConfirmation(start=order.slot.start, end=order.slot.end, label="slot")

    async def reschedule(self, handle, slot):
        return BookingConfirmation(start=slot.start, end=slot.end, label="slot")

    async def cancel(self, handle, reason):
        return None

    async def status(self, handle):
        return SchedulerStatus(status=RepairStatus.BOOKED)
'''


def _probe(tmp_path: Path, vendor: str) -> tuple[Path, dict[str, str]]:
    """The probe adaptor, found through its entry point without installing anything: a
    package and a ``.dist-info`` on PYTHONPATH."""
    site = tmp_path / "site"
    (site / "vendor_json_probe").mkdir(parents=True)
    (site / "vendor_json_probe" / "__init__.py").write_text(ADAPTOR)
    info = site / "vendor_json_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vendor-json-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[repairs_gateway.adaptors]\nvendor_json_probe = vendor_json_probe:Diary\n"
    )
    cfg = tmp_path / "contract.yaml"
    cfg.write_text(
        f"type: vendor_json_probe\noptions: {{vendor: {vendor}}}\n"
        "fixtures:\n  property_id: '000001'\n  page_size: 3\n"
    )
    return cfg, {"PYTHONPATH": str(site)}


def test_json_vendor_data_passes(tmp_path: Path) -> None:
    cfg, env = _probe(tmp_path, "json")
    done = run_kit("--adaptor-config", str(cfg), "-k", "vendor or pages", env=env, cwd=tmp_path)
    assert done.returncode == 0, output(done)
    assert "2 passed" in done.stdout, output(done)


def test_a_datetime_in_vendor_fails_the_kit(tmp_path: Path) -> None:
    cfg, env = _probe(tmp_path, "datetime")
    done = run_kit("--adaptor-config", str(cfg), "-k", "vendor", env=env, cwd=tmp_path)
    assert done.returncode == 1, output(done)
    assert " test_slot_vendor_data_survives_the_slot_token _" in done.stdout, output(done)
    assert "cannot be written as JSON" in done.stdout, output(done)
    assert "datetime is not JSON serializable" in done.stdout, output(done)


@pytest.mark.parametrize(
    ("vendor", "says"),
    [
        ("set", "cannot be written as JSON"),
        ("bytes", "cannot be written as JSON"),
        ("tuple", "changes on its way through JSON"),
    ],
)
def test_other_values_json_cannot_carry_fail_too(tmp_path: Path, vendor: str, says: str) -> None:
    cfg, env = _probe(tmp_path, vendor)
    done = run_kit("--adaptor-config", str(cfg), "-k", "vendor", env=env, cwd=tmp_path)
    assert done.returncode == 1 and says in done.stdout, output(done)


def test_booking_uses_the_slot_as_the_gateway_returns_it(tmp_path: Path) -> None:
    """The booking checks are handed slots through JSON too, so they fail the same way
    rather than pass with data production would never give back."""
    cfg, env = _probe(tmp_path, "datetime")
    done = run_kit("--adaptor-config", str(cfg), "-k", "retried_booking", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "cannot be written as JSON" in done.stdout, output(done)

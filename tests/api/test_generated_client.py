"""A front-end team's day one: generate a client from /openapi.json with a standard generator
(openapi-python-client), and run the three calls, a move and a cancel with it - typed answers,
typed problems, every error told apart by its type."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gatewaykit import demo_council, running_gateway

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def _generate(spec: dict[str, Any], where: Path) -> Any:
    if not GENERATOR.exists():
        pytest.skip("openapi-python-client is not installed (it is in the dev extra)")
    (where / "openapi.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unable to" not in done.stdout, done.stdout  # nothing of the document was skipped
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("repairs_gateway_client")
    finally:
        sys.path.remove(str(where))


async def test_a_generated_client_books_moves_and_cancels(tmp_path: Path) -> None:
    demo, files = demo_council()
    async with running_gateway(tmp_path, {"demo": demo}, files) as gw:
        for name in list(sys.modules):
            if name.startswith("repairs_gateway_client"):
                del sys.modules[name]
        gen_dir = tmp_path / "gen"
        gen_dir.mkdir()
        pkg = _generate(gw.app.openapi(), gen_dir)
        api = importlib.import_module("repairs_gateway_client.api.repairs")
        models = importlib.import_module("repairs_gateway_client.models")
        for op in (
            "list_addresses",
            "list_appointments",
            "create_repair",
            "reschedule_repair",
            "cancel_repair",
            "get_repair",
        ):
            importlib.import_module(f"repairs_gateway_client.api.repairs.{op}")
        client = pkg.AuthenticatedClient(base_url="http://gateway.test", token=gw.key)
        client.set_async_httpx_client(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=gw.app),
                base_url="http://gateway.test",
                headers={"Authorization": f"Bearer {gw.key}"},
            )
        )

        found = await api.list_addresses.asyncio(council="demo", client=client, postcode="ln1 1aa")
        assert isinstance(found, models.AddressList)
        home = next(a for a in found.addresses if a.online_repairs)

        page = await api.list_appointments.asyncio(
            council="demo", client=client, property_id=home.id, sor_code="N631111", page_size=3
        )
        assert isinstance(page, models.SlotPage) and len(page.slots) == 3
        assert page.slots[0].start.tzinfo is not None  # typed as a date-time

        body = models.RepairIn(
            property_id=home.id,
            sor_code="N631111",
            description="Shower hose split",
            contact=models.ContactIn(phone="07700 900123"),
            slot_token=page.slots[0].slot_token,
        )
        made = await api.create_repair.asyncio_detailed(
            council="demo", client=client, body=body, idempotency_key="gen-1"
        )
        repair = made.parsed
        assert isinstance(repair, models.RepairOut), made.content
        assert repair.status == models.RepairStatus.BOOKED
        assert made.headers["location"].endswith(f"/repairs/{repair.reference}")

        other = next(a for a in found.addresses if a.online_repairs and a.id != home.id)
        body.property_id = other.id  # a slot offered for another home
        refused = await api.create_repair.asyncio(
            council="demo", client=client, body=body, idempotency_key="gen-2"
        )
        assert isinstance(refused, models.InvalidInputProblem)
        assert refused.errors[0].field == "slot_token"

        moves = await api.list_appointments.asyncio(
            council="demo", client=client, reference=repair.reference, page_size=2
        )
        moved = await api.reschedule_repair.asyncio(
            council="demo",
            reference=repair.reference,
            client=client,
            body=models.RescheduleIn(slot_token=moves.slots[-1].slot_token),
        )
        assert isinstance(moved, models.RepairOut)
        assert moved.appointment.start == moves.slots[-1].start

        cancelled = await api.cancel_repair.asyncio(
            council="demo",
            reference=repair.reference,
            client=client,
            body=models.CancelIn(reason="fixed it myself"),
        )
        assert isinstance(cancelled, models.RepairOut)
        assert cancelled.status == models.RepairStatus.CANCELLED

        bad = await api.list_addresses.asyncio(council="demo", client=client, postcode="nope")
        assert isinstance(bad, models.InvalidInputProblem)
        assert bad.errors[0].field == "postcode"
        missing = await api.get_repair.asyncio(council="demo", reference="NOPE-0000", client=client)
        assert isinstance(missing, models.NotFoundProblem)
        await client.get_async_httpx_client().aclose()
    shutil.rmtree(gen_dir, ignore_errors=True)

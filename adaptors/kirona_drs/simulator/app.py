"""The simulator's ASGI app: SOAP at ``/DRSService`` (WSDL at ``?wsdl``) and admin calls.

Admin (JSON, loopback only by how it is run):
- ``POST /_sim/reset`` ``{"capacity"?, "working_days"?, "now"?}``: forget orders, sessions, faults.
- ``POST /_sim/faults`` ``{"faults": [{"op", "kind", "seconds"?, "times"?, "message"?,
  "status"?}]}`` with kind one of ``latency`` (seconds or [min, max]), ``fault`` (SOAP Fault),
  ``status`` (status error/failure, nothing done), ``session_expired``, ``timeout`` (wait, then
  do the work and answer late), ``lost`` (do the work, then drop the connection),
  ``malformed`` (do the work, then answer 200 with a well-framed but truncated XML reply),
  ``vague`` (refusals of ``op`` - a taken slot, say - are answered as real installations do:
  ``status=error`` with ``VAGUE_MESSAGE``, which does not say why).
- ``POST /_sim/clock`` ``{"now": iso | null}``; ``POST /_sim/expire-sessions``;
  ``POST /_sim/orders/{ref}/status`` ``{"status": "STARTED"}``; ``GET /_sim/state``.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adaptors.kirona_drs.simulator import xmlio
from adaptors.kirona_drs.simulator.state import DRSState, Refused
from adaptors.kirona_drs.simulator.xmlio import as_list, parse_time

WSDL_FILE = Path(__file__).resolve().parents[1] / "wsdl" / "drs-subset.wsdl"
VAGUE_MESSAGE = "Error in Booking.schedule. Error in modifyJob Planning failed"
Send = Any
Receive = Any


class DropConnection(Exception):
    """Raised after the response has started: the server closes the socket mid-reply."""


@dataclass
class Fault:
    op: str
    kind: str
    seconds: float | list[float] = 0.0
    times: int | None = None
    message: str = "Simulated failure"
    status: str = "error"

    def matches(self, op: str) -> bool:
        return (self.op in ("*", op)) and (self.times is None or self.times > 0)

    def use(self) -> None:
        if self.times is not None:
            self.times -= 1

    def delay(self) -> float:
        if isinstance(self.seconds, list):
            return random.uniform(float(self.seconds[0]), float(self.seconds[-1]))
        return float(self.seconds)


class Simulator:
    def __init__(
        self,
        latency: dict[str, float | list[float]] | None = None,
        login: str = "gateway",
        password: str = "drs-secret",  # noqa: S107
    ) -> None:
        self.base_latency = latency or {}
        self.credentials = (login, password)
        self.state = DRSState(login=login, password=password)
        self.faults: list[Fault] = []

    def reset(self, options: dict[str, Any]) -> None:
        self.state = DRSState(login=self.credentials[0], password=self.credentials[1])
        if options.get("capacity") is not None:
            self.state.capacity = int(options["capacity"])
        if options.get("working_days"):
            self.state.working_days = tuple(options["working_days"])
        if options.get("now"):
            self.state.clock = datetime.fromisoformat(options["now"])
        if options.get("areas"):
            self.state.areas = dict(options["areas"])
        self.faults = []

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path, method = scope["path"], scope["method"]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path.startswith("/_sim/"):
            status, payload = self.admin(method, path, body)
            await _respond(send, status, json.dumps(payload).encode(), "application/json")
            return
        if path.rstrip("/") != "/DRSService":
            await _respond(send, 404, b"not found", "text/plain")
            return
        if method == "GET":
            query = scope.get("query_string", b"").decode().lower()
            if "wsdl" in query:
                host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
                text = WSDL_FILE.read_text().replace(
                    "http://localhost:8080/DRSService", f"http://{host}/DRSService"
                )
                await _respond(send, 200, text.encode(), "text/xml; charset=utf-8")
            else:
                await _respond(send, 200, b"DRS simulator", "text/plain")
            return
        await self.soap(body, send)

    async def soap(self, body: bytes, send: Send) -> None:
        try:
            op, data = xmlio.parse(body)
        except xmlio.BadRequest as exc:
            await _respond(send, 500, xmlio.fault(str(exc), "soap:Client"))
            return
        self.state.calls[op] = self.state.calls.get(op, 0) + 1
        delay = self.base_latency.get(op, self.base_latency.get("*", 0.0))
        if isinstance(delay, list):
            delay = random.uniform(float(delay[0]), float(delay[-1]))
        lost = malformed = vague = False
        for f in self.faults:
            if not f.matches(op):
                continue
            if f.kind == "latency":
                delay = f.delay()
                continue
            f.use()
            if f.kind == "fault":
                await asyncio.sleep(delay)
                await _respond(send, 500, xmlio.fault(f.message))
                return
            if f.kind == "status":
                await asyncio.sleep(delay)
                await _respond(send, 200, xmlio.envelope(op, f.status, f.message, {}))
                return
            if f.kind == "session_expired":
                self.state.expire_sessions()
            elif f.kind == "timeout":
                delay = max(delay, f.delay() or 30.0)
            elif f.kind == "lost":
                lost = True
            elif f.kind == "malformed":
                malformed = True
            elif f.kind == "vague":
                vague = True
            break
        if delay:
            await asyncio.sleep(delay)
        reply = self.handle(op, data, vague=vague)
        if malformed:
            await _respond(send, 200, reply[: len(reply) * 2 // 3])
            return
        if lost:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/xml; charset=utf-8"),
                        (b"content-length", str(len(reply)).encode()),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": reply[: len(reply) // 3], "more_body": True}
            )
            raise DropConnection(op)
        await _respond(send, 200, reply)

    # -- operations ---------------------------------------------------------------------
    def handle(self, op: str, data: dict[str, Any], *, vague: bool = False) -> bytes:
        st = self.state
        try:
            if op == "openSession":
                sid = st.open_session(str(data.get("login") or ""), str(data.get("password") or ""))
                return xmlio.envelope(op, "success", None, {"sessionId": sid})
            if op == "closeSession":
                st.close_session(data.get("sessionId"))
                return xmlio.envelope(op, "success", None, {})
            st.check_session(data.get("sessionId"))
            fields, note = self.operation(op, data)
            return xmlio.envelope(op, "success", note, fields)
        except Refused as exc:
            if vague:
                return xmlio.envelope(op, "error", VAGUE_MESSAGE, {})
            return xmlio.envelope(op, exc.status, exc.message, {})
        except (KeyError, TypeError, ValueError) as exc:
            return xmlio.envelope(op, "error", f"Invalid request: {type(exc).__name__}", {})

    def operation(self, op: str, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        st = self.state
        if op == "checkAvailability":
            order = data.get("theOrder") or {}
            codes = as_list(order.get("theBookingCodes"))
            if not codes or not order.get("locationID"):
                raise Refused("theOrder with locationID and theBookingCodes is required")
            begin = parse_time(data.get("periodBegin")) or st.now()
            end = parse_time(data.get("periodEnd")) or begin + timedelta(days=7)
            minutes = int(codes[0].get("standardMinuteValue") or 60)
            days, note = st.availability(
                begin, end, st.trade_of(codes[0]), str(order["locationID"]), minutes
            )
            return {"theSlots": days, "serverInfo": "DRS simulator"}, note or None
        if op == "createOrder":
            o = dict(data.get("theOrder") or {})
            o["theBookingCodes"] = as_list(o.get("theBookingCodes"))
            o["targetDate"] = parse_time(o.get("targetDate"))
            order = st.create_order(o)
            return {"theOrder": xmlio.order_xml(order)}, None
        if op == "scheduleBooking":
            b = dict(data.get("theBooking") or {})
            b["planningWindowStart"] = parse_time(b.get("planningWindowStart"))
            b["planningWindowEnd"] = parse_time(b.get("planningWindowEnd"))
            st.schedule(b)
            return {}, None
        if op == "selectOrder":
            refs = [str(r) for r in as_list(data.get("primaryOrderNumber"))]
            found = [xmlio.order_xml(st.orders[r]) for r in refs if r in st.orders]
            return {"theOrders": found}, None
        if op == "selectBooking":
            return {
                "theBookings": [
                    xmlio.booking_xml(o) for o in st.orders.values() if o.booking.start is not None
                ]
            }, None
        if op == "deleteOrder":
            order = st.delete_order(data.get("theOrder") or {})
            return {"theOrder": xmlio.order_xml(order)}, None
        if op == "deleteBooking":
            order = st.delete_booking(data.get("theBooking") or {})
            return {"theBooking": xmlio.booking_xml(order)}, None
        raise Refused(f"Operation {op} is not supported by this simulator", "error")

    # -- admin --------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        data = json.loads(body or b"{}") if method == "POST" else {}
        if path == "/_sim/state":
            return 200, {**self.state.summary(), "faults": [f.__dict__ for f in self.faults]}
        if method != "POST":
            return 405, {"error": "use POST"}
        if path == "/_sim/reset":
            self.reset(data)
            return 200, {"ok": True}
        if path == "/_sim/faults":
            self.faults = [Fault(**f) for f in data.get("faults", [])]
            return 200, {"ok": True, "faults": len(self.faults)}
        if path == "/_sim/clock":
            now = data.get("now")
            self.state.clock = datetime.fromisoformat(now) if now else None
            return 200, {"now": self.state.now().isoformat()}
        if path == "/_sim/expire-sessions":
            self.state.expire_sessions()
            return 200, {"ok": True}
        if path.startswith("/_sim/orders/") and path.endswith("/status"):
            ref = path[len("/_sim/orders/") : -len("/status")]
            order = self.state.orders.get(ref)
            if order is None:
                return 404, {"error": "no such order"}
            order.booking.life = str(data["status"])
            if data["status"] == "COMPLETED":
                order.status = "COMPLETED"
            return 200, {"ok": True}
        return 404, {"error": "unknown admin call"}


async def _respond(
    send: Send, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

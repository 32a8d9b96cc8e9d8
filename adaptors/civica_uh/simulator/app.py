"""Starlette app: PropertyService.svc and RepairService.svc over SOAP 1.1, plus ``/_sim``.

Admin endpoints (tests only, loopback):
- ``POST /_sim/faults`` JSON ``{"mode": ..., "latency_ms": 0, "operations": [...]|null,
  "times": n|null, "timeout_seconds": 30}``; modes: ``http500``, ``http503``, ``soap_fault``,
  ``success_false``, ``auth_fault``, ``timeout``, ``malformed``, ``drop_after``,
  ``billion_laughs``, ``external_entity``, ``extra_elements``.
- ``POST /_sim/reset``, ``GET /_sim/state``, ``GET /_sim/health``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from adaptors.civica_uh.simulator.service import Faults, UHState, refused
from adaptors.civica_uh.simulator.soapxml import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    NS,
    ServiceSchema,
    SoapFault,
    fault,
    parse_request,
    reply,
)

XML = "text/xml; charset=utf-8"
MODES = {
    "http500",
    "http503",
    "soap_fault",
    "success_false",
    "auth_fault",
    "timeout",
    "malformed",
    "drop_after",
    "billion_laughs",
    "external_entity",
    "extra_elements",
}


class DroppedResponse(Response):
    """Sends the status line and headers, then drops the connection: the client gets no
    reply although the request was processed."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", XML.encode()), (b"content-length", b"4096")],
            }
        )
        raise ConnectionAbortedError("simulated connection drop after processing")


def _extra_elements(body: bytes) -> bytes:
    """Add elements the WSDL does not know, as a newer UH release might."""
    root = etree.fromstring(body)
    for result in root.iter():
        if isinstance(result.tag, str) and result.tag.endswith("Result"):
            etree.SubElement(result, f"{{{NS}}}FutureField").text = "x"
            for sub in result.iter():
                if sub is not result and len(sub) and isinstance(sub.tag, str):
                    etree.SubElement(sub, f"{{{NS}}}AnotherNewField").text = "y"
            break
    return etree.tostring(root, encoding="utf-8")


def create_app(state: UHState | None = None) -> Starlette:
    st = state or UHState()
    services = {
        "PropertyService": ServiceSchema("PropertyService"),
        "RepairService": ServiceSchema("RepairService"),
    }

    async def svc(request: Request) -> Response:
        name = request.path_params["service"]
        schema = services.get(name)
        if schema is None:
            return Response("Not found", status_code=404)
        if request.method == "GET":
            if "wsdl" not in {k.lower() for k in request.query_params}:
                return Response(
                    "Service is running. Add ?wsdl for its description.", media_type="text/plain"
                )
            location = str(request.url.replace(query=""))
            return Response(schema.wsdl_for(location), media_type=XML)
        return await soap(request, name, schema)

    async def soap(request: Request, name: str, schema: ServiceSchema) -> Response:
        body = await request.body()
        faults = st.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("text/xml"):
            return Response(
                "Cannot process the message because the content type "
                f"'{ctype}' was not the expected type 'text/xml'.",
                415,
            )
        try:
            op, op_el = parse_request(body)
            action = request.headers.get("soapaction", "").strip('"')
            expected = f"{NS}/I{name}/{op}"
            if op not in schema.operations or action != expected:
                raise SoapFault(
                    f"The message with Action '{action}' cannot be processed at "
                    "the receiver, due to a ContractFilter mismatch.",
                    code="a:ActionNotSupported",
                )
            schema.validate(op_el)
        except SoapFault as exc:
            return Response(fault(exc.message, exc.code), status_code=exc.status, media_type=XML)
        mode = faults.applies(op)
        if mode == "timeout":
            await asyncio.sleep(faults.timeout_seconds)
        elif mode in ("http500", "http503"):
            status = 500 if mode == "http500" else 503
            return Response(
                "<html><body>Service Unavailable</body></html>", status, media_type="text/html"
            )
        elif mode == "soap_fault":
            return Response(fault("An internal error occurred.", "s:Server"), 500, media_type=XML)
        elif mode == "auth_fault":
            return Response(
                fault("Authentication failed: invalid user name or password."), 500, media_type=XML
            )
        elif mode == "success_false":
            return Response(
                reply(op, refused(999, "The request could not be completed")), media_type=XML
            )
        elif mode == "malformed":
            return Response(
                b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><Broken",
                media_type=XML,
            )
        elif mode == "billion_laughs":
            return Response(BILLION_LAUGHS, media_type=XML)
        elif mode == "external_entity":
            return Response(EXTERNAL_ENTITY, media_type=XML)
        try:
            result = st.handle(op, op_el)
        except SoapFault as exc:
            return Response(fault(exc.message, exc.code), status_code=exc.status, media_type=XML)
        if mode == "drop_after":
            return DroppedResponse()
        out = reply(op, result)
        if mode == "extra_elements":
            out = _extra_elements(out)
        return Response(out, media_type=XML)

    async def set_faults(request: Request) -> Response:
        data: dict[str, Any] = await request.json()
        mode = data.get("mode")
        if mode is not None and mode not in MODES:
            return JSONResponse({"error": f"unknown mode {mode!r}", "modes": sorted(MODES)}, 400)
        st.faults = Faults(
            latency_ms=int(data.get("latency_ms", 0)),
            mode=mode,
            operations=data.get("operations"),
            times=data.get("times"),
            timeout_seconds=float(data.get("timeout_seconds", 30.0)),
        )
        return JSONResponse(st.snapshot()["faults"])

    async def reset(request: Request) -> Response:
        st.reset()
        return JSONResponse({"ok": True})

    async def state_view(request: Request) -> Response:
        return JSONResponse(st.snapshot())

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/_sim/faults", set_faults, methods=["POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            Route("/_sim/state", state_view, methods=["GET"]),
            Route("/_sim/health", health, methods=["GET"]),
            Route("/{service}.svc", svc, methods=["GET", "POST"]),
        ]
    )
    app.state.uh = st
    return app

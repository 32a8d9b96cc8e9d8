"""The framework's floor: a bare Starlette app with the gateway's two read routes.

It serves the gateway's own answers (captured once from a running gateway by
``bench.bench_foundation``) from a dict, so the JSON bodies are the same bytes; what is left is
the cost of uvicorn, Starlette routing, query parsing and JSON encoding: the least any
framework-based gateway can cost per request on this machine.

    python -m bench.floor_app ANSWERS.json --port 18002

ANSWERS.json: {"addresses": {"<council>|<postcode>": body},
               "appointments": {"<council>|<property_id>|<sor_code>": body}}
It runs under the same uvicorn settings as ``repairs-gateway serve`` (one worker, an app object,
log_level=warning, no access log, its h11 protocol sending an answer's head and body in one
write: gateway/http_server.py), so the server's own cost is the same on both sides.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NOT_FOUND = {"title": "Not found", "status": 404}


def address_key(council: str, postcode: str) -> str:
    return f"{council}|{postcode}"


def appointment_key(council: str, property_id: str, sor_code: str) -> str:
    return f"{council}|{property_id}|{sor_code}"


def build_app(answers: dict[str, dict[str, Any]]) -> Starlette:
    addresses_by_key = answers["addresses"]
    appointments_by_key = answers["appointments"]

    async def addresses(request: Request) -> JSONResponse:
        q = request.query_params
        body = addresses_by_key.get(
            address_key(request.path_params["council"], q.get("postcode", ""))
        )
        if body is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return JSONResponse(body)

    async def appointments(request: Request) -> JSONResponse:
        q = request.query_params
        body = appointments_by_key.get(
            appointment_key(
                request.path_params["council"], q.get("property_id", ""), q.get("sor_code", "")
            )
        )
        if body is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/v1/councils/{council}/addresses", addresses),
            Route("/v1/councils/{council}/appointments", appointments),
        ]
    )


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("answers", type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18002)
    args = ap.parse_args()
    app = build_app(json.loads(args.answers.read_text()))
    from gateway.http_server import OneWriteH11Protocol

    # The same call as gateway.cli._serve.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http=OneWriteH11Protocol,
    )


if __name__ == "__main__":
    main()

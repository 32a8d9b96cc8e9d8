"""GET /health (application/health+json). Open to all, so it reveals nothing sensitive: no
URLs, hosts, credentials or error texts from backends - only pass/warn/fail per component."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.errors import GatewayError
from gateway.plugins import discover
from gateway.runtime import Runtime

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT = 3.0
CACHE_SECONDS = 5.0
_cache: dict[int, tuple[float, dict[str, Any]]] = {}


async def _check(coro: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT)
        return {"status": "pass"}
    except TimeoutError:
        return {"status": "fail", "output": "timed out"}
    except GatewayError as exc:
        return {"status": "fail", "output": exc.slug}
    except Exception as exc:  # noqa: BLE001
        return {"status": "fail", "output": type(exc).__name__}


async def health_report(rt: Runtime) -> dict[str, Any]:
    names: list[str] = ["database"]
    coros: list[Any] = [rt.database.ping()]
    components: dict[str, list[dict[str, Any]]] = {}
    for council in rt.councils.values():
        for name, adaptor in council.adaptors.items():
            names.append(f"{council.id}:{name}")
            coros.append(adaptor.check_health())
        for name in council.broken:
            components[f"{council.id}:{name}"] = [{"status": "fail", "output": "not loaded"}]
    results = await asyncio.gather(*(_check(c) for c in coros))
    for n, r in zip(names, results, strict=True):
        components.setdefault(n, [r])
    for council in rt.councils.values():
        for name, breaker in council.breakers.items():
            entry = components.get(f"{council.id}:{name}")
            if entry is not None:
                entry[0]["circuit"] = breaker.state
                if breaker.state == "open" and entry[0]["status"] == "pass":
                    entry[0]["status"] = "warn"
    for plugin in discover().errors:
        components[f"plugin:{plugin}"] = [{"status": "warn", "output": "failed to load"}]
    statuses = {c[0]["status"] for c in components.values()}
    overall = (
        "fail"
        if components["database"][0]["status"] == "fail"
        else ("warn" if statuses - {"pass"} else "pass")
    )
    return {"status": overall, "version": "1", "checks": components}


@router.get(
    "/health",
    summary="Health of the database and each adaptor",
    response_class=JSONResponse,
    responses={
        200: {"description": "pass or warn", "content": {"application/health+json": {}}},
        503: {"description": "fail", "content": {"application/health+json": {}}},
    },
)
async def health(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    hit = _cache.get(id(rt))
    if hit is None or time.monotonic() - hit[0] > CACHE_SECONDS:
        hit = (time.monotonic(), await health_report(rt))
        _cache[id(rt)] = hit
    body = hit[1]
    return JSONResponse(
        body,
        status_code=503 if body["status"] == "fail" else 200,
        media_type="application/health+json",
    )

"""GET /health (application/health+json). Open to all, so it reveals nothing sensitive: no
URLs, hosts, credentials or error texts from backends - only pass/warn/fail per component.

Probes for an orchestrator: ``/health/live`` (the process answers: no database, no backends)
and ``/health/ready`` (database reachable, schema migrated, councils loaded; 503 problem+json
otherwise). ``/metrics`` (Prometheus) needs an admin key for every council served; a scraper
can instead use the separate port of ``GATEWAY_METRICS_PORT``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from gateway.api.problems import PROBLEM
from gateway.plugins import discover
from gateway.probes import ProbeResult
from gateway.problemdetails import BASE
from gateway.runtime import Runtime
from repairs_gateway_sdk.adaptor import capabilities_of
from repairs_gateway_sdk.errors import GatewayError

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


PROBE_FIRST_WAIT = 2.0  # an adaptor never probed yet (just started) is probed once, this long
OUTBOX_DUE_WARN_SECONDS = 300.0  # a due item waiting longer: no worker is delivering


def _worst_circuit(states: dict[str, str]) -> str:
    return next((st for st in ("open", "half_open") if st in states.values()), "closed")


def adaptor_check(rt: Runtime, council: Any, name: str, result: ProbeResult) -> dict[str, Any]:
    """One adaptor's entry: its backend's last probe (result and age), its circuits."""
    entry: dict[str, Any] = {"status": "pass"}
    if result.status == "fail":
        entry["status"], entry["output"] = "fail", result.output or "failed"
    elif result.status == "unknown" and name in council.unstarted:
        entry["output"] = "not started yet: starts on its first call (lazy start)"
    elif result.status == "unknown":
        entry["status"], entry["output"] = "warn", "not probed yet"
    else:
        age = result.age()
        if age is not None and age > rt.prober.stale_after:
            entry["status"], entry["output"] = "warn", "probe result is stale"
    entry["probe"] = result.public()
    adaptor = council.adaptors[name]
    per_capability = council.breakers.get(name, {})
    states = {cap: "closed" for cap in sorted(capabilities_of(adaptor))}
    states.update({cap: b.state for cap, b in per_capability.items()})
    entry["circuits"] = states
    entry["circuit"] = _worst_circuit(states)
    if "open" in states.values() and entry["status"] == "pass":
        entry["status"] = "warn"
    return entry


async def outbox_check(rt: Runtime) -> dict[str, Any]:
    """Items by state, the dead count (by kind), the oldest pending item's age and how long
    the longest-waiting due item has waited: counts and ages only."""
    try:
        snap = await asyncio.wait_for(
            rt.outbox_monitor.current(max_age=CACHE_SECONDS), CHECK_TIMEOUT
        )
    except TimeoutError:
        return {"status": "warn", "output": "timed out"}
    except Exception as exc:  # noqa: BLE001 - the database check says more
        return {"status": "warn", "output": type(exc).__name__}
    out: dict[str, Any] = {"status": "pass", **snap.public()}
    if snap.by_state.get("dead", 0):
        out["status"], out["output"] = (
            "warn",
            "dead items: see `repairs-gateway outbox list --state dead`",
        )
    elif (snap.oldest_due_wait or 0) > OUTBOX_DUE_WARN_SECONDS:
        out["status"], out["output"] = "warn", "due items are waiting: is a worker running?"
    return out


async def health_report(rt: Runtime) -> dict[str, Any]:
    """Database, outbox and every adaptor. Backends are never called here: each adaptor shows
    the background prober's last result and its age (gateway/probes.py); one never probed yet
    is probed once, joined with the prober's own probe."""
    components: dict[str, list[dict[str, Any]]] = {}
    probed: list[tuple[Any, str]] = []
    for council in rt.councils.values():
        for name in council.adaptors:
            state = council.not_ready.get(name)
            if state is not None:  # still starting, or retrying its start in the background
                components[f"{council.id}:{name}"] = [
                    {"status": "warn" if state.status == "starting" else "fail", **state.public()}
                ]
                continue
            probed.append((council, name))
        for name in council.broken:
            components[f"{council.id}:{name}"] = [{"status": "fail", "output": "not loaded"}]
    database, outbox, *results = await asyncio.gather(
        _check(rt.database.ping()),
        outbox_check(rt),
        *(rt.prober.first(c, n, PROBE_FIRST_WAIT) for c, n in probed),
    )
    checks: dict[str, list[dict[str, Any]]] = {"database": [database], "outbox": [outbox]}
    for (council, name), result in zip(probed, results, strict=True):
        components[f"{council.id}:{name}"] = [adaptor_check(rt, council, name, result)]
    checks.update(sorted(components.items()))
    for plugin in discover().errors:
        checks[f"plugin:{plugin}"] = [{"status": "warn", "output": "failed to load"}]
    statuses = {c[0]["status"] for c in checks.values()}
    overall = (
        "fail"
        if checks["database"][0]["status"] == "fail"
        else ("warn" if statuses - {"pass"} else "pass")
    )
    return {"status": overall, "version": "1", "checks": checks}


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


HEALTH_JSON = "application/health+json"
READY_CACHE_SECONDS = 1.0
_ready_cache: dict[int, tuple[float, dict[str, Any]]] = {}


@router.get(
    "/health/live",
    summary="Liveness: the process answers (checks nothing else)",
    response_class=JSONResponse,
    responses={200: {"description": "alive", "content": {HEALTH_JSON: {}}}},
)
async def live() -> JSONResponse:
    return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)


async def readiness_report(rt: Runtime) -> dict[str, Any]:
    """Database reachable, schema migrated (or newer, during a rolling upgrade), councils
    loaded. Outputs are fixed words and revision ids: nothing about hosts or credentials."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        schema = await asyncio.wait_for(rt.database.schema_state(), CHECK_TIMEOUT)
    except TimeoutError:
        checks["database"] = {"status": "fail", "output": "timed out"}
        checks["schema"] = {"status": "fail", "output": "unknown"}
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means not ready
        checks["database"] = {"status": "fail", "output": type(exc).__name__}
        checks["schema"] = {"status": "fail", "output": "unknown"}
    else:
        checks["database"] = {"status": "pass"}
        checks["schema"] = {
            "status": {"current": "pass", "ahead": "warn", "behind": "fail"}[schema.state],
            "output": schema.state,
            "database": list(schema.database),
            "code": list(schema.code),
        }
        if schema.state == "behind":
            checks["schema"]["hint"] = "run `repairs-gateway migrate`"
    checks["config"] = (
        {"status": "pass", "councils": len(rt.councils)}
        if rt.councils
        else {"status": "fail", "output": "no councils loaded"}
    )
    failed = [name for name, c in checks.items() if c["status"] == "fail"]
    return {"status": "fail" if failed else "pass", "failed": failed, "checks": checks}


@router.get(
    "/health/ready",
    summary="Readiness: database reachable, migrations current, configuration loaded",
    response_class=JSONResponse,
    responses={
        200: {"description": "ready", "content": {HEALTH_JSON: {}}},
        503: {"description": "not ready (problem details)", "content": {PROBLEM: {}}},
    },
)
async def ready(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    hit = _ready_cache.get(id(rt))
    if hit is None or time.monotonic() - hit[0] > READY_CACHE_SECONDS:
        hit = (time.monotonic(), await readiness_report(rt))
        _ready_cache[id(rt)] = hit
    report = hit[1]
    if report["status"] == "pass":
        return JSONResponse({"status": "pass", "checks": report["checks"]}, media_type=HEALTH_JSON)
    return JSONResponse(
        {
            "type": BASE + "not-ready",
            "title": "Not ready",
            "status": 503,
            "detail": f"not ready: {', '.join(report['failed'])} failing",
            "checks": report["checks"],
        },
        status_code=503,
        media_type=PROBLEM,
        headers={"Retry-After": "5"},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics, for an admin key that covers every council served (they count
    calls per council): ``repairs-gateway keys create prometheus --council '*' --role admin``."""
    rt: Runtime = request.app.state.runtime
    authorization = request.headers.get("authorization")
    presented = request.headers.get("x-api-key")
    if authorization and authorization[:7].lower() == "bearer ":
        presented = authorization[7:].strip()
    principal = await rt.authenticate(presented)
    principal.check_admin()
    for council in rt.councils:
        principal.check_council(council)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

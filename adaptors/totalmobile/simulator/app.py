"""The Totalmobile simulator: a FastAPI app speaking the REST surface in ../openapi.yaml.

Admin endpoints (not part of the vendor surface, hidden from the schema):
``POST /_sim/reset``, ``POST /_sim/faults``, ``GET /_sim/state``,
``POST /_sim/jobs/{reference}/status``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptors.totalmobile.simulator.state import SCOPES, Rule, SimState
from repairs_gateway_sdk.timeutil import today_london

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$", re.I)
JOB_STATUSES = {"Unscheduled", "Scheduled", "Allocated", "InProgress", "Completed"}

OPS: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/identity/connect/token$"), "token"),
    ("POST", re.compile(r"^/api/optimise/worlds/[^/]+/jobs$"), "create_job"),
    ("GET", re.compile(r"^/api/optimise/worlds/[^/]+/jobs$"), "list_jobs"),
    ("GET", re.compile(r"^/api/optimise/worlds/[^/]+/jobs/[^/]+$"), "get_job"),
    ("DELETE", re.compile(r"^/api/optimise/worlds/[^/]+/jobs/[^/]+$"), "delete_job"),
    ("GET", re.compile(r"^/api/serviceconnect/worlds/[^/]+/Availability$"), "availability"),
    ("GET", re.compile(r"^/api/serviceconnect/worlds/[^/]+/Availability/Browse$"), "browse"),
    ("POST", re.compile(r"^/api/serviceconnect/worlds/[^/]+/Booking$"), "booking"),
]


def op_for(method: str, path: str) -> str | None:
    for m, pattern, name in OPS:
        if m == method and pattern.match(path):
            return name
    return None


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "message": message}]}, status_code=status, headers=headers
    )


class Faults:
    """ASGI middleware: latency, injected errors and lost replies, per operation."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        op = op_for(scope["method"], scope["path"])
        if op is None:
            await self.app(scope, receive, send)
            return
        self.state.count(f"req:{op}")
        if self.state.latency_ms:
            await asyncio.sleep(self.state.latency_ms / 1000)
        rule = self.state.take_rule(op)
        if rule is not None and rule.action == "delay":
            await asyncio.sleep(rule.delay_ms / 1000)
        elif rule is not None and rule.action == "error":
            headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after else None
            body = rule.body or {"errors": [{"code": "Injected", "message": "injected fault"}]}
            await JSONResponse(body, status_code=rule.status, headers=headers)(scope, receive, send)
            return
        elif rule is not None and rule.action == "lost_reply":
            await self._lose_reply(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lose_reply(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Do the work (commit), then drop the connection after the status line."""

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        # Returning without the promised body makes the server close the connection.


def create_app(state: SimState | None = None) -> FastAPI:
    st = state or SimState()
    app = FastAPI(title="Totalmobile simulator", docs_url=None, redoc_url=None)
    app.state.sim = st

    # -- helpers -----------------------------------------------------------------------------
    def authorise(request: Request, scope_needed: str) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return error(
                401, "Unauthorized", "bearer token required", {"WWW-Authenticate": "Bearer"}
            )
        tok = st.valid_token(header[7:].strip())
        if tok is None:
            return error(
                401,
                "Unauthorized",
                "token is invalid or expired",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if scope_needed not in tok.scopes:
            return error(403, "Forbidden", f"token lacks scope {scope_needed}")
        return None

    def versioned(request: Request) -> Response | None:
        accept = request.headers.get("accept", "")
        if "version=3" not in accept.replace(" ", ""):
            return error(406, "NotAcceptable", "send Accept: application/json; version=3")
        return None

    def world_ok(world: str) -> Response | None:
        return None if world in st.worlds else error(404, "WorldNotFound", "no such world")

    def refused(request: Request, world: str, api: str) -> Response | None:
        """Token (with the API's scope), media-type version for SERVICE CONNECT, and world."""
        return (
            authorise(request, api)
            or (versioned(request) if api == "serviceconnect" else None)
            or world_ok(world)
        )

    async def body_json(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    def availability_body(work_type: str, duration: int, first: date, weeks: int) -> dict[str, Any]:
        days = [first + timedelta(days=i) for i in range(weeks * 7)]
        return {
            "PlanningWindows": [w.as_json() for w in st.windows],
            "AvailabilityPlanningWindows": [
                {
                    "PlanningWindowId": w.id,
                    "AvailabilityDays": [
                        {
                            "Date": d.isoformat(),
                            "AvailabilityStatus": _status(st.remaining(work_type, d, w, duration)),
                        }
                        for d in days
                    ],
                }
                for w in st.windows
            ],
        }

    def dates(start: str | None, weeks: str | None) -> tuple[date, int] | Response:
        try:
            first = date.fromisoformat(start) if start else today_london()
        except ValueError:
            return error(400, "InvalidStartDate", "StartDate must be YYYY-MM-DD")
        try:
            n = int(weeks or "1")
        except ValueError:
            n = 0
        if not 1 <= n <= 6:
            return error(400, "InvalidWeeks", "Weeks must be between 1 and 6")
        return first, n

    # -- OAuth2 ----------------------------------------------------------------------------
    @app.post("/identity/connect/token")
    async def token(request: Request) -> Response:
        st.count("token_requests")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != st.client_id or form.get("client_secret") != st.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        scopes = set((form.get("scope") or " ".join(sorted(SCOPES))).split())
        if not scopes <= SCOPES:
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        tok = st.issue_token(scopes)
        return JSONResponse(
            {
                "access_token": tok.value,
                "token_type": "Bearer",
                "expires_in": st.token_ttl_seconds,
                "scope": " ".join(sorted(scopes)),
            }
        )

    # -- Optimise jobs ---------------------------------------------------------------------
    @app.post("/api/optimise/worlds/{world}/jobs", status_code=201)
    async def create_job(world: str, request: Request) -> Response:
        if r := refused(request, world, "optimise"):
            return r
        body = await body_json(request)
        if not isinstance(body, dict):
            return error(400, "InvalidBody", "a JSON object is required")
        ref = str(((body.get("identity") or {}).get("reference")) or "")
        if not ref or len(ref) > 64:
            return error(400, "InvalidReference", "identity.reference is required (1-64 chars)")
        if body.get("workType") not in st.work_types:
            return error(400, "UnknownWorkType", "workType is not defined in this world")
        duration = body.get("duration")
        if not isinstance(duration, int) or not 1 <= duration <= 960:
            return error(400, "InvalidDuration", "duration must be minutes (1-960)")
        address = (body.get("location") or {}).get("addressDetail") or {}
        if not POSTCODE.match(str(address.get("postCode", ""))):
            return error(400, "InvalidPostCode", "location.addressDetail.postCode is required")
        if ref in st.jobs:
            return error(409, "DuplicateReference", "a job with this reference exists")
        job = dict(body)
        job["status"] = "Unscheduled"
        job["appointment"] = None
        st.jobs[ref] = job
        st.count("jobs_created")
        return JSONResponse(job, status_code=201)

    @app.get("/api/optimise/worlds/{world}/jobs")
    async def list_jobs(
        world: str, request: Request, page: int = 1, pageSize: int = 50
    ) -> Response:  # noqa: N803
        if r := refused(request, world, "optimise"):
            return r
        size = max(1, min(pageSize, 200))
        refs = sorted(st.jobs)
        chunk = refs[(page - 1) * size : page * size]
        nxt = None
        if page * size < len(refs):
            nxt = f"/api/optimise/worlds/{world}/jobs?page={page + 1}&pageSize={size}"
        return JSONResponse({"results": [st.jobs[r] for r in chunk], "paging": {"next": nxt}})

    @app.get("/api/optimise/worlds/{world}/jobs/{reference}")
    async def get_job(world: str, reference: str, request: Request) -> Response:
        if r := refused(request, world, "optimise"):
            return r
        job = st.jobs.get(reference)
        if job is None:
            return error(404, "JobNotFound", "no job with this reference")
        return JSONResponse(job)

    @app.delete("/api/optimise/worlds/{world}/jobs/{reference}", status_code=204)
    async def delete_job(world: str, reference: str, request: Request) -> Response:
        if r := refused(request, world, "optimise"):
            return r
        body = await body_json(request)
        reason = (
            ((body or {}).get("deletionReason") or {}).get("reference")
            if isinstance(body, dict)
            else None
        )
        if not reason:
            return error(400, "DeletionReasonRequired", "deletionReason.reference is required")
        job = st.jobs.pop(reference, None)
        if job is None:
            return error(404, "JobNotFound", "no job with this reference")
        visit = job.get("appointment")
        if visit:
            st.release(job["workType"], visit["Date"], visit["PlanningWindowId"])
        st.deletions.append({"reference": reference, "reason": str(reason)})
        st.count("jobs_deleted")
        return Response(status_code=204)

    # -- SERVICE CONNECT availability and bookings ------------------------------------------------
    @app.get("/api/serviceconnect/worlds/{world}/Availability")
    async def availability(world: str, request: Request) -> Response:
        if r := refused(request, world, "serviceconnect"):
            return r
        q = request.query_params
        job = st.jobs.get(q.get("PrimaryOrderNumber", ""))
        if job is None:
            return error(404, "JobNotFound", "no job with this PrimaryOrderNumber")
        span = dates(q.get("StartDate"), q.get("Weeks"))
        if isinstance(span, Response):
            return span
        return JSONResponse(availability_body(job["workType"], job["duration"], *span))

    @app.get("/api/serviceconnect/worlds/{world}/Availability/Browse")
    async def browse(world: str, request: Request) -> Response:
        if r := refused(request, world, "serviceconnect"):
            return r
        q = request.query_params
        work_type = q.get("WorkType", "")
        if work_type not in st.work_types:
            return error(400, "UnknownWorkType", "WorkType is not defined in this world")
        try:
            duration = int(q.get("Duration", ""))
        except ValueError:
            duration = 0
        if not 1 <= duration <= 960:
            return error(400, "InvalidDuration", "Duration must be minutes (1-960)")
        if not POSTCODE.match(q.get("PostCode", "")):
            return error(400, "InvalidPostCode", "PostCode must be a UK postcode")
        span = dates(q.get("StartDate"), q.get("Weeks"))
        if isinstance(span, Response):
            return span
        return JSONResponse(availability_body(work_type, duration, *span))

    @app.post("/api/serviceconnect/worlds/{world}/Booking", status_code=201)
    async def booking(world: str, request: Request) -> Response:
        if r := refused(request, world, "serviceconnect"):
            return r
        body = await body_json(request)
        if not isinstance(body, dict):
            return error(400, "InvalidBody", "a JSON object is required")
        ref = str(body.get("PrimaryOrderNumber") or "")
        job = st.jobs.get(ref)
        if job is None:
            return error(404, "JobNotFound", "no job with this PrimaryOrderNumber")
        window = st.window(body.get("PlanningWindowId"))
        if window is None:
            return error(400, "UnknownPlanningWindow", "PlanningWindowId is not defined")
        try:
            day = date.fromisoformat(str(body.get("Date")))
        except ValueError:
            return error(400, "InvalidDate", "Date must be YYYY-MM-DD")
        current = job.get("appointment")
        if (
            current
            and current["Date"] == day.isoformat()
            and str(current["PlanningWindowId"]) == str(window.id)
        ):
            return JSONResponse(current, status_code=200)  # already booked there
        if st.remaining(job["workType"], day, window, job["duration"]) <= 0:
            return error(
                409,
                "PlanningWindowUnavailable",
                "the planning window has no availability on that date",
            )
        st.take(job["workType"], day.isoformat(), window)
        if current:
            st.release(job["workType"], current["Date"], current["PlanningWindowId"])
        visit = st.visit(ref, day, window)
        job["appointment"] = visit
        job["status"] = "Scheduled"
        st.count("bookings_made")
        return JSONResponse(visit, status_code=201)

    # -- admin ---------------------------------------------------------------------------------
    @app.post("/_sim/reset", include_in_schema=False)
    async def reset(request: Request) -> Response:
        body = await body_json(request) or {}
        st.reset(
            default_capacity=int(body.get("default_capacity", 2)),
            capacity={str(k): int(v) for k, v in (body.get("capacity") or {}).items()},
            token_ttl_seconds=int(body.get("token_ttl_seconds", 3600)),
        )
        return JSONResponse(st.snapshot())

    @app.post("/_sim/faults", include_in_schema=False)
    async def faults(request: Request) -> Response:
        body = await body_json(request) or {}
        if "latency_ms" in body:
            st.latency_ms = int(body["latency_ms"])
        if "token_ttl_seconds" in body:
            st.token_ttl_seconds = int(body["token_ttl_seconds"])
        if body.get("expire_tokens"):
            st.expire_tokens()
        if body.get("clear"):
            st.rules.clear()
        for raw in body.get("rules") or []:
            st.rules.append(Rule(**raw))
        return JSONResponse({"rules": len(st.rules), "latency_ms": st.latency_ms})

    @app.get("/_sim/state", include_in_schema=False)
    async def sim_state() -> Response:
        return JSONResponse(st.snapshot())

    @app.post("/_sim/jobs/{reference}/status", include_in_schema=False)
    async def set_status(reference: str, request: Request) -> Response:
        body = await body_json(request) or {}
        job = st.jobs.get(reference)
        if job is None:
            return error(404, "JobNotFound", "no job with this reference")
        if body.get("status") not in JOB_STATUSES:
            return error(400, "InvalidStatus", f"status must be one of {sorted(JOB_STATUSES)}")
        job["status"] = body["status"]
        return JSONResponse(job)

    return app


def _status(remaining: int) -> int:
    """SERVICE CONNECT AvailabilityStatus: 0 unavailable, 1 available, 2 last place."""
    if remaining <= 0:
        return 0
    return 2 if remaining == 1 else 1


def build(state: SimState | None = None) -> ASGIApp:
    """The app wrapped in the fault-injection middleware (what the server runs)."""
    app = create_app(state)
    return Faults(app, app.state.sim)

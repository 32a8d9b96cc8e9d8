"""``POST /v1/admin/reload``: read the council files again without a restart (as SIGHUP does;
gateway/reload.py). Platform-wide, so it needs an admin key that covers every council served
(as /metrics does): ``repairs-gateway keys create ops --council '*' --role admin``.

200 with what changed (added, replaced, updated, removed, unchanged; adaptors not serving yet;
warnings), or 409 problem+json listing every problem (file, line, key) when the files on disk
do not pass ``check``: the running configuration is then kept. Audited (``config.reload``).
Each replica reloads itself only: call each one (or send each one SIGHUP)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway import audit
from gateway.api.problems import PROBLEM
from gateway.problemdetails import problem_details
from gateway.runtime import Runtime

router = APIRouter()


async def _admin_of_everything(request: Request, rt: Runtime) -> str:
    authorization = request.headers.get("authorization")
    presented = request.headers.get("x-api-key")
    if authorization and authorization[:7].lower() == "bearer ":
        presented = authorization[7:].strip()
    principal = await rt.authenticate(presented)
    principal.check_admin()
    for council in list(rt.councils):
        principal.check_council(council)
    return principal.key_id


@router.post("/v1/admin/reload", include_in_schema=False)
async def reload_config(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    key_id = await _admin_of_everything(request, rt)
    result = await rt.reload(via="admin")
    await audit.record(
        rt.database,
        "config.reload",
        key_id=key_id,
        council=None,
        outcome="ok" if result.ok else result.outcome,
        added=len(result.added),
        replaced=len(result.replaced),
        updated=len(result.updated),
        removed=len(result.removed),
        problems=len(result.problems),
    )
    if result.ok:
        return JSONResponse(result.public())
    body = problem_details(
        409,
        "conflict",
        "Configuration refused",
        f"{len(result.problems)} problem(s) in the council files; the running configuration "
        "is kept (fix them, then reload again; `repairs-gateway check` shows the same)",
    )
    body.update(result.public())
    return JSONResponse(body, status_code=409, media_type=PROBLEM)

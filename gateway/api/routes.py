"""The v1 routes. Thin: parse, authorise, delegate to the service, shape the answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from gateway.api import contract
from gateway.api.middleware import QUERY_PAIRS, query_pairs
from gateway.api.schemas import (
    AddressList,
    CancelIn,
    RepairIn,
    RepairOut,
    RescheduleIn,
    SlotPage,
)
from gateway.auth import Principal
from gateway.booking import handle_of
from gateway.councils import Council
from gateway.runtime import Runtime
from gateway.sandbox import is_sandbox
from gateway.service import AppointmentPage
from gateway.tokens import compact_json
from repairs_gateway_sdk.errors import InvalidInput, NotFound
from repairs_gateway_sdk.model import JobSize, Priority, Trade
from repairs_gateway_sdk.postcodes import normalise_postcode
from repairs_gateway_sdk.timeutil import london


def _query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_ALLOWED_QUERY: dict[int, frozenset[str]] = {}


def check_query_names(request: Request) -> None:
    """Refuse query parameters the operation does not define (catches typos like postcod=)."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    allowed = _ALLOWED_QUERY.get(id(route))
    if allowed is None:
        allowed = _ALLOWED_QUERY[id(route)] = frozenset(_query_names(route.dependant))
    for name in request.query_params:
        if name not in allowed:
            raise InvalidInput(f"unknown query parameter {name!r}", field=name or "query")


router = APIRouter(prefix="/v1/councils/{council}", tags=["repairs"])
POSTCODE_PATTERN = r"^\s*[A-Za-z]{1,2}[0-9][A-Za-z0-9]?\s*[0-9][A-Za-z]{2}\s*$"


Q = TypeVar("Q", bound=BaseModel)


class AddressQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Published with its pattern; checked by the gateway's own normaliser so a resident
    # reads "'XYZ' is not a UK postcode" rather than a regular expression.
    postcode: str = Field(
        max_length=16,
        description="a UK postcode, any case and spacing",
        json_schema_extra={"pattern": POSTCODE_PATTERN, "minLength": 5, "example": "LN1 1AA"},
    )

    @field_validator("postcode")
    @classmethod
    def _uk_postcode(cls, value: str) -> str:
        if normalise_postcode(value) is None:
            raise PydanticCustomError(
                "postcode", "'{value}' is not a UK postcode", {"value": value}
            )
        return value


class AppointmentsQuery(BaseModel):
    """Either a job (property_id with sor_code, or trade and size) or a repair to move."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    property_id: str | None = Field(None, min_length=1, max_length=64)
    reference: str | None = Field(
        None, max_length=32, description="slots to move this repair to (instead of a job)"
    )
    sor_code: str | None = Field(None, max_length=32)
    trade: Trade | None = None
    size: JobSize | None = None
    priority: Priority | None = None
    from_: date | None = Field(None, alias="from", description="first day (YYYY-MM-DD)")
    cursor: str | None = Field(None, max_length=4096)
    page_size: int | None = Field(None, ge=1, le=50)


CouncilId = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="council id, e.g. demo")
]  # the hot routes check the same pattern themselves (path_council)
# admin routes answer from the gateway's own store
PROBLEMS = contract.responses(*contract.ERRORS_LOCAL)


def _ok(status: int = 200, *headers: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"headers": contract.success_headers(*headers)}}


@dataclass(frozen=True)
class Access:
    """Who is calling, for which council: resolved once per request."""

    runtime: Runtime
    council: Council
    principal: Principal


async def access(request: Request, council: CouncilId) -> Access:
    """Authenticate (Authorization: Bearer, or X-API-Key), check the key may act for the
    council, and find the council. Called directly by the hot routes (whose query models
    refuse unknown parameters); other routes use ``AccessDep``, which also checks the query
    names."""
    rt: Runtime = request.app.state.runtime
    p = await rt.authenticate(presented_key(request.scope))
    p.check_council(council, sandbox=is_sandbox(rt.gateway.councils.get(council)))
    return Access(rt, rt.gateway.council(council), p)


def presented_key(scope: Any) -> str | None:
    """The key a request presents: ``Authorization: Bearer`` (first such header), else
    ``X-API-Key`` (the first), read straight from the ASGI headers."""
    api_key = authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value
        elif name == b"x-api-key" and api_key is None:
            api_key = value
    if authorization and authorization[:7].lower() == b"bearer ":
        return authorization[7:].decode("latin-1").strip()
    return api_key.decode("latin-1") if api_key is not None else None


async def access_checked(request: Request, council: CouncilId) -> Access:
    a = await access(request, council)
    check_query_names(request)
    return a


AccessDep = Annotated[Access, Depends(access_checked)]


def parse_query(request: Request, model: type[Q]) -> Q:
    """Parse a hot route's query string into ``model`` with one pydantic call. FastAPI's
    dependency and per-parameter machinery was over a third of these calls' time, so the
    two hottest routes take the request and do this (and ``access``) themselves. Unknown
    parameters are refused by the model (``extra="forbid"``); errors name the field as
    usual; ``query_openapi`` publishes the parameters."""
    scope = request.scope
    pairs = scope.get(QUERY_PAIRS)  # parsed once already by the edge's URL check
    if pairs is None:
        pairs = query_pairs(scope["query_string"].decode("latin-1"))
    try:
        return model.model_validate(dict(pairs))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]
        ) from None


QUERY_EXAMPLES = {
    "postcode": "LN1 1AA",
    "property_id": "00012345",
    "sor_code": "N631111",
    "trade": "plumbing",
    "size": "small",
    "priority": "normal",
    "from": "2026-12-03",
    "page_size": 5,
}


COUNCIL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_COUNCIL = re.compile(COUNCIL_PATTERN)


def path_council(request: Request) -> str:
    """The council id of a hot route's path, checked as FastAPI would check ``CouncilId``
    (its dependency machinery was a third of the hot routes' own time)."""
    council: str = request.path_params["council"]
    if not _COUNCIL.match(council):
        raise RequestValidationError(
            [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ("path", "council"),
                    "msg": f"String should match pattern '{COUNCIL_PATTERN}'",
                    "input": council,
                }
            ]
        )
    return council


def hot_route_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The parameters of a hot route (path and query), which it parses itself."""
    council = {
        "name": "council",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": COUNCIL_PATTERN, "title": "Council"},
        "description": "council id, e.g. demo",
    }
    return {"parameters": [council, *query_openapi(model)["parameters"]]}


def query_openapi(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                **({"description": prop["description"]} if "description" in prop else {}),
                **({"example": QUERY_EXAMPLES[name]} if name in QUERY_EXAMPLES else {}),
            }
            for name, prop in schema["properties"].items()
        ]
    }


@router.get(
    "/addresses",
    openapi_extra=hot_route_openapi(AddressQuery),
    response_model=AddressList,
    operation_id="listAddresses",
    responses={**_ok(), **contract.responses(*contract.ERRORS_READ)},
    summary="Properties at a postcode, with whether repairs can be reported online",
)
async def addresses(request: Request) -> Response:
    a = await access(request, path_council(request))
    postcode = parse_query(request, AddressQuery).postcode
    answer = await a.runtime.gateway.address_answer(a.council, postcode)
    return Response(answer, media_type="application/json")


@router.get(
    "/appointments",
    openapi_extra=hot_route_openapi(AppointmentsQuery),
    response_model=SlotPage,
    operation_id="listAppointments",
    responses={**_ok(), **contract.responses(*contract.ERRORS_READ)},
    summary="Available appointment slots for a repair, a page at a time",
)
async def appointments(request: Request) -> Response:
    a = await access(request, path_council(request))
    q = parse_query(request, AppointmentsQuery)
    rt, council, p = a.runtime, a.council, a.principal
    property_id, reference, sor_code = q.property_id, q.reference, q.sor_code
    trade, size, priority, from_, cursor, page_size = (
        q.trade,
        q.size,
        q.priority,
        q.from_,
        q.cursor,
        q.page_size,
    )
    gw = rt.gateway
    scheduler = None
    if reference is not None:
        r = await _own_repair(rt, council, p, reference)
        if r.status != "booked" or not r.scheduler:
            raise InvalidInput(
                f"repair {r.reference} has no appointment to move", field="reference"
            )
        property_id, job, scheduler = r.property_id, handle_of(r).job, r.scheduler
    elif property_id is None:
        raise InvalidInput(
            "give property_id (or the reference of a repair to move)", field="property_id"
        )
    else:
        job = gw.resolve_job(council, sor_code=sor_code, trade=trade, size=size, priority=priority)
    page = await gw.appointments(
        council, property_id, job, from_, cursor, page_size, scheduler=scheduler
    )
    return Response(slot_page_json(council.id, property_id, page), media_type="application/json")


def slot_page_json(council: str, property_id: str, page: AppointmentPage) -> bytes:
    """The ``SlotPage`` answer's JSON, byte for byte as pydantic writes the model (compact,
    UTF-8, fields in the model's order, times in Europe/London with their offset), written
    as text without a model per slot (they were a third of the page's cost). A test holds
    it to ``SlotPage(...).model_dump_json()``."""
    slots = ",".join(
        f'{{"start":"{o.start_text or london(o.slot.start).isoformat()}",'
        f'"end":"{o.end_text or london(o.slot.end).isoformat()}",'
        f'"label":{compact_json(o.slot.label)},"best":{"true" if o.slot.best else "false"},'
        f'"slot_token":{o.token_json or compact_json(o.token)}}}'
        for o in page.slots
    )
    cursor = "null" if page.next_cursor is None else compact_json(page.next_cursor)
    return (
        f'{{"council":{compact_json(council)},"property_id":{compact_json(property_id)},'
        f'"slots":[{slots}],"next_cursor":{cursor}}}'
    ).encode()


@router.post(
    "/repairs",
    status_code=201,
    response_model=RepairOut,
    operation_id="createRepair",
    responses={**_ok(201, "Location"), **contract.responses(*contract.ERRORS_WRITE)},
    summary="Report a repair and book the chosen slot",
)
async def create_repair(
    a: AccessDep,
    body: RepairIn,
    idempotency_key: Annotated[
        str, Header(min_length=1, max_length=255, description="retry with the same key is safe")
    ],
) -> JSONResponse:
    rt, council, p = a.runtime, a.council, a.principal
    # RepairIn is the booking flow's NewRepair with the API's validation: no copy
    status, answer = await rt.bookings.create(council, p.key_id, idempotency_key, body)
    media = "application/json" if status < 400 else "application/problem+json"
    headers = {}
    if status == 201:
        headers["Location"] = f"/v1/councils/{council.id}/repairs/{answer['reference']}"
    return JSONResponse(answer, status_code=status, media_type=media, headers=headers)


def repair_request(scope: Any, body: bytes) -> tuple[str, RepairIn, str] | None:
    """The council, the repair and the Idempotency-Key of a well-formed ``POST .../repairs``,
    read as FastAPI reads them for ``create_repair`` (the council's pattern, the first such
    header within its length, the body as ``json.loads`` gives it, validated as ``RepairIn``):
    the edge then calls ``create_repair_directly`` (FastAPI's dependency and body machinery
    was a sixth of a booking's own time). None for anything else, malformed or unusual (a
    query string, a media type but ``application/json``, a body that is not a valid repair,
    dependency overrides): FastAPI answers those, as always."""
    if scope.get("query_string") or getattr(scope.get("app"), "dependency_overrides", None):
        return None  # (overridden dependencies: FastAPI's to resolve)
    council = scope["path"].split("/")[3]
    if not _COUNCIL.match(council):
        return None
    headers = scope["headers"]
    key = next((v for k, v in headers if k == b"idempotency-key"), None)
    if key is None or not 1 <= len(key) <= 255:
        return None
    media = next((v for k, v in headers if k == b"content-type"), b"")  # the first, as FastAPI
    if media.split(b";", 1)[0].strip().lower() != b"application/json":
        return None  # any other type (or none) FastAPI decides on
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            return None
        return council, RepairIn.model_validate(data), key.decode("latin-1")
    except Exception:  # noqa: BLE001 - not JSON, too deep (RecursionError), not a valid repair
        return None


async def create_repair_directly(
    request: Request, council: str, body: RepairIn, idempotency_key: str
) -> Response:
    """``create_repair`` for what ``repair_request`` read, with its dependency resolved."""
    return await create_repair(await access_checked(request, council), body, idempotency_key)


async def _own_repair(rt: Runtime, council: Council, p: Principal, reference: str) -> Any:
    r = await rt.bookings.get_repair(council, reference)
    if p.role != "admin" and r.client_id not in (None, p.key_id):
        raise NotFound(f"no repair {reference!r} in council {council.id!r}", field="reference")
    return r


@router.get(
    "/repairs/{reference}",
    response_model=RepairOut,
    operation_id="getRepair",
    responses={**_ok(), **contract.responses(*contract.ERRORS_LOCAL)},
    summary="A repair with its status and appointment",
)
async def get_repair(
    a: AccessDep,
    reference: Annotated[str, Path(max_length=32)],
) -> dict[str, Any]:
    rt, council, p = a.runtime, a.council, a.principal
    r = await _own_repair(rt, council, p, reference)
    view = await rt.bookings.refresh_status(council, r)
    if council.config.notifications is not None:  # messages and their receipts
        view["notifications"] = await rt.bookings.notifications.for_repair(council.id, r.reference)
    return view


@router.patch(
    "/repairs/{reference}",
    response_model=RepairOut,
    operation_id="rescheduleRepair",
    responses={**_ok(), **contract.responses(*contract.ERRORS_WRITE)},
    summary="Move the appointment to another slot",
)
async def reschedule(
    a: AccessDep,
    reference: Annotated[str, Path(max_length=32)],
    body: RescheduleIn,
) -> dict[str, Any]:
    rt, council, p = a.runtime, a.council, a.principal
    r = await _own_repair(rt, council, p, reference)
    return await rt.bookings.reschedule(council, r.reference, body.slot_token)


@router.post(
    "/repairs/{reference}/cancel",
    response_model=RepairOut,
    operation_id="cancelRepair",
    responses={**_ok(), **contract.responses(*contract.ERRORS_WRITE)},
    summary="Cancel a repair and its appointment",
)
async def cancel(
    a: AccessDep,
    reference: Annotated[str, Path(max_length=32)],
    body: Annotated[CancelIn | None, Body()] = None,
) -> dict[str, Any]:
    rt, council, p = a.runtime, a.council, a.principal
    r = await _own_repair(rt, council, p, reference)
    return await rt.bookings.cancel(
        council, r.reference, (body or CancelIn(reason="cancelled by resident")).reason
    )

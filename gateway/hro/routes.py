"""The HRO facade, mounted per council at ``/hro/{council}``: both front ends' backend calls,
matched case-insensitively, answered in the shapes they read (see the contract in README,
"Moving from Housing Repairs Online").

A thin layer: every call goes to the services the ``/v1`` routes use (``Gateway.addresses``,
``Gateway.appointments``, ``Bookings.create`` / ``reschedule`` / ``cancel`` /
``get_repair``), so idempotency, the outbox, routing, breakers and adaptors are the standard
flow's. What is the facade's own: triage values -> SoR code, finding a slot again from its
times (N&S sends no token), retries recognised by their body (no Idempotency-Key), and the
error statuses these front ends handle.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from gateway.api.problems import problem
from gateway.api.schemas import EMAIL, PHONE
from gateway.booking import NewRepair, handle_of
from gateway.councils import Council
from gateway.hro.auth import AddressLimiter, TokenSigner
from gateway.hro.config import HroConfig, council_hro
from gateway.hro.photos import Photo, decode_photo, store_photo
from gateway.hro.shapes import (
    OUTCOME_PARAMS,
    REPAIR_TYPE_OUT,
    address_out,
    parse_time,
    same_postcode,
    slot_display,
    triage_out,
    wall_clock,
)
from gateway.runtime import Runtime
from gateway.service import OfferedSlot
from gateway.storage.models import HroRepair, IdempotencyRecord, OutboxItem, Repair
from gateway.text import SafeText
from mappings.triage import TriageLookupError, TriageOption, TriageSet, TriageTree
from repairs_gateway_sdk.errors import (
    BackendUnavailable,
    Conflict,
    GatewayError,
    InvalidInput,
    NotFound,
    RateLimited,
    SlotUnavailable,
)
from repairs_gateway_sdk.model import PRIORITY_TARGET_DAYS, Contact, JobSpec, Priority
from repairs_gateway_sdk.timeutil import london, now, today_london

log = structlog.get_logger("gateway.hro")
router = APIRouter(prefix="/hro/{council}", tags=["hro"], include_in_schema=False)

CLIENT_ID = "hro"  # Repair.client_id of facade bookings (no API key: one client per council)
DAYS_PER_PAGE = 5
PAGE = 50  # slots asked of the standard flow per call while filling five days
MAX_PAGES = 6
T = r"(tenant|communal|leasehold)"
# The N&S booking routes take a photo (raw base64, ~14 MB): the only routes allowed a body
# above the gateway's usual limit (see gateway/api/app.py, RequestContext).
PHOTO_ROUTE = re.compile(rf"^/hro/[a-z0-9][a-z0-9_-]{{0,62}}/repair/{T}repair/?$", re.IGNORECASE)
PHOTO_BODY_BYTES = 15 * 1024 * 1024
LARGE_BODIES = ((PHOTO_ROUTE, PHOTO_BODY_BYTES),)


# -- per-runtime state ---------------------------------------------------------------------


@dataclass
class _State:
    signer: TokenSigner
    limiter: AddressLimiter


_states: weakref.WeakKeyDictionary[Runtime, _State] = weakref.WeakKeyDictionary()


def _state(rt: Runtime) -> _State:
    st = _states.get(rt)
    if st is None:
        secrets = [rt.settings.resolved_secret_key(), *rt.settings.previous_secret_keys()]
        st = _states[rt] = _State(TokenSigner(secrets), AddressLimiter())
    return st


@dataclass
class Call:
    """One facade request, resolved: runtime, council, its HRO config and triage."""

    request: Request
    rt: Runtime
    council: Council
    hro: HroConfig
    triage: TriageSet
    query: dict[str, str]

    def q(self, name: str) -> str | None:
        value = self.query.get(name.lower())
        return value if value not in (None, "", "undefined") else None

    def need(self, name: str) -> str:
        value = self.q(name)
        if value is None:
            raise InvalidInput(f"the query parameter {name} is required", field=name)
        return value

    def tree(self, repair_type: str) -> TriageTree:
        tree = self.triage.tree(repair_type)
        if tree is None:
            raise NotFound(f"council {self.council.id!r} takes no {repair_type} repairs online")
        return tree


# -- errors --------------------------------------------------------------------------------

_STATUS = {422: 400}  # ASP.NET's model-binding status, which HRO front ends expect


def _error(exc: GatewayError) -> JSONResponse:
    status = _STATUS.get(exc.status, exc.status)
    headers: dict[str, str] = {}
    if isinstance(exc, BackendUnavailable | RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    return problem(status, exc.slug, exc.title, exc.detail, errors=errors, headers=headers)


def _invalid(exc: ValidationError) -> JSONResponse:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in exc.errors()
    ]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem(
        400, "invalid-input", "Invalid input", f"check these fields: {fields}", errors=errors
    )


# -- the one route: dispatch by lower-cased path -------------------------------------------


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def facade(request: Request, council: str, rest: str) -> Response:
    rt: Runtime = request.app.state.runtime
    path = "/" + rest.strip("/").lower()
    try:
        handler, repair_type, method = _match(path)
        if handler is None:
            raise NotFound(f"no such call {path!r}")
        if request.method != method:
            return problem(
                405,
                "http-405",
                "Method not allowed",
                f"use {method}",
                headers={"Allow": method},
            )
        c = rt.gateway.council(council)
        enabled = council_hro(c)
        if enabled is None:
            raise NotFound(f"council {council!r} has no Housing Repairs Online facade")
        hro, triage = enabled
        address = request.client.host if request.client else "unknown"
        _state(rt).limiter.take(c.id, address, hro.rate_per_minute)
        query = {k.lower(): v for k, v in request.query_params.items()}
        call = Call(request, rt, c, hro, triage, query)
        if handler is not authentication and hro.auth == "token":
            _state(rt).signer.verify(c.id, _bearer(request))
        result: Response = await handler(call, repair_type)
        result.headers["Cache-Control"] = "no-store"  # addresses and repairs: never cached
        return result
    except ValidationError as exc:
        return _invalid(exc)
    except TriageLookupError as exc:
        return _error(InvalidInput(str(exc), field=exc.field))
    except GatewayError as exc:
        return _error(exc)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
        if len(token) >= 2 and token[0] == token[-1] == '"':  # a JSON string, as received
            token = token[1:-1]
        return token
    return None


# -- authentication ------------------------------------------------------------------------


async def authentication(call: Call, _: str | None) -> Response:
    """A bare bearer token (text/plain) for the council's identifier; 401 otherwise."""
    hro = call.hro
    if hro.auth == "token":
        presented = call.query.get("identifier") or ""
        if not hro.identifier_matches(presented, hro.identifier_hash()):
            from repairs_gateway_sdk.errors import Unauthorized

            raise Unauthorized("the identifier is not valid")
    token = _state(call.rt).signer.issue(call.council.id, hro.token_seconds)
    return PlainTextResponse(token)


# -- addresses -----------------------------------------------------------------------------


async def addresses(call: Call, repair_type: str | None) -> Response:
    """Properties where repairs can be reported online: homes (Redbridge, tenant,
    leasehold) or blocks and communal areas (communal). The gateway knows no tenure: a
    leasehold home is listed when its address source says repairs there are online."""
    props = await call.rt.gateway.addresses(call.council, call.need("postcode"))
    communal = repair_type == "communal"
    rows = [
        address_out(p)
        for p in props
        if p.online_repairs and ((p.kind.value != "dwelling") == communal)
    ]
    return JSONResponse(rows)


# -- triage --------------------------------------------------------------------------------


async def triage_options(call: Call, repair_type: str | None) -> Response:
    assert repair_type is not None
    values = {
        outcome: call.q(param) or default for outcome, (param, default) in OUTCOME_PARAMS.items()
    }
    return JSONResponse(triage_out(call.tree(repair_type).options, values))


def _leaf(
    call: Call, repair_type: str, location: str, problem_: str, issue: str | None
) -> TriageOption:
    leaf = call.tree(repair_type).resolve(location, problem_, issue)
    if leaf.outcome is not None:
        raise InvalidInput(
            f"this repair cannot be booked online ({leaf.outcome.replace('_', ' ')})",
            field="repairProblem",
        )
    return leaf


def _job(call: Call, leaf: TriageOption) -> JobSpec:
    job = call.rt.gateway.resolve_job(
        call.council, sor_code=leaf.sor_code, trade=None, size=None, priority=leaf.priority
    )
    if leaf.priority is not None and job.priority != leaf.priority:
        job = job.model_copy(update={"priority": leaf.priority})  # the triage leaf decides
    return job


# -- appointments --------------------------------------------------------------------------


async def _five_days(
    call: Call,
    property_id: str,
    job: JobSpec,
    start: date | None,
    scheduler: str | None = None,
    *,
    until: datetime | None = None,
) -> list[OfferedSlot]:
    """Slots over five days from the first day with any at or after ``start`` (today), one
    per (start, end): the front ends key slots by their times. With ``until``, pages on
    until a slot starts after it instead (finding a slot again)."""
    gw = call.rt.gateway
    seen: set[tuple[datetime, datetime]] = set()
    found: list[OfferedSlot] = []
    cursor: str | None = None
    window_end: date | None = None
    begin = start or today_london()
    for _ in range(MAX_PAGES):
        page = await gw.appointments(
            call.council, property_id, job, begin, cursor, PAGE, scheduler=scheduler
        )
        for o in page.slots:
            day = london(o.slot.start).date()
            if until is None:
                if window_end is None:
                    window_end = day + timedelta(days=DAYS_PER_PAGE)
                if day >= window_end:
                    return found
            elif o.slot.start > until:
                return found
            key = (o.slot.start, o.slot.end)
            if key not in seen:
                seen.add(key)
                found.append(o)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


def _from_date(call: Call) -> date | None:
    text = call.q("fromDate")
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)", field="fromDate") from None


async def appointments(call: Call, repair_type: str | None) -> Response:
    rtype = repair_type or "tenant"
    leaf = _leaf(
        call, rtype, call.need("repairLocation"), call.need("repairProblem"), call.q("repairIssue")
    )
    slots = await _five_days(call, call.need("locationId"), _job(call, leaf), _from_date(call))
    return JSONResponse(
        [
            {
                "id": o.token,
                "startTime": wall_clock(o.slot.start),
                "endTime": wall_clock(o.slot.end),
            }
            for o in slots
        ]
    )


async def _find_slot(
    call: Call,
    property_id: str,
    job: JobSpec,
    start: datetime,
    end: datetime,
    scheduler: str | None = None,
) -> str:
    """The token of the slot with these times, offered again now; 409 when it has gone."""
    if start <= now():
        raise SlotUnavailable("that appointment has already started; choose another")
    slots = await _five_days(call, property_id, job, london(start).date(), scheduler, until=start)
    for o in slots:
        if o.slot.start == start and o.slot.end == end:
            return o.token
    raise SlotUnavailable("that appointment is no longer available; please choose another")


# -- booking -------------------------------------------------------------------------------


class _Choice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: SafeText = Field(min_length=1, max_length=100)
    display: SafeText | None = Field(None, max_length=300)


class _Address(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display: SafeText | None = Field(None, max_length=500)
    locationId: SafeText = Field(min_length=1, max_length=64)  # noqa: N815 - the front end's


class _Description(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: SafeText = Field(min_length=1, max_length=2000)
    locationText: SafeText | None = Field(None, max_length=200)  # noqa: N815
    base64img: str | None = None
    fileExtension: SafeText | None = Field(None, max_length=16)  # noqa: N815


class _ContactDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["email", "text"]
    value: SafeText = Field(min_length=1, max_length=320)


class _Time(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: SafeText | None = Field(None, max_length=4096)
    startDateTime: SafeText | None = Field(None, max_length=64)  # noqa: N815
    endDateTime: SafeText | None = Field(None, max_length=64)  # noqa: N815
    display: SafeText | None = Field(None, max_length=200)


class _RepairBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    postcode: SafeText | None = Field(None, max_length=16)
    address: _Address
    location: _Choice
    problem: _Choice
    issue: _Choice | None = None
    contactPersonNumber: SafeText | None = Field(None, max_length=32)  # noqa: N815
    description: _Description
    contactDetails: _ContactDetails  # noqa: N815
    time: _Time | None = None


def _contact(body: _RepairBody) -> Contact:
    """Email confirmations: the number to call is contactPersonNumber. Text confirmations:
    the text number (N&S leaves contactPersonNumber out when the resident agreed to be
    called on it)."""
    cd = body.contactDetails
    phone = (cd.value if cd.type == "text" else body.contactPersonNumber) or None
    email = cd.value if cd.type == "email" else None
    if phone is not None:
        phone = phone.strip()
        if not re.match(PHONE, phone):
            field = "contactDetails.value" if cd.type == "text" else "contactPersonNumber"
            raise InvalidInput(f"{phone!r} is not a phone number", field=field)
    if email is not None and not re.match(EMAIL, email.strip()):
        raise InvalidInput("that is not an email address", field="contactDetails.value")
    return Contact(phone=phone, email=email.strip() if email else None)


LARGE_JSON = 256 * 1024  # bodies above this (photos) are parsed off the event loop


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        if len(raw) > LARGE_JSON:
            return await asyncio.to_thread(json.loads, raw)
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON", field="body") from None


async def book(call: Call, repair_type: str | None) -> Response:
    rtype = repair_type or "tenant"
    flavour = "redbridge" if repair_type is None else "ns"
    raw = await _body(call.request)
    body = _RepairBody.model_validate(raw)
    photo: Photo | None = None
    if body.description.base64img:
        photo = await asyncio.to_thread(decode_photo, body.description.base64img)
    issue = body.issue.value if body.issue else None
    loc, prob, iss = call.tree(rtype).path_of(body.location.value, body.problem.value, issue)
    leaf = _leaf(call, rtype, body.location.value, body.problem.value, issue)
    job = _job(call, leaf)
    contact = _contact(body)
    communal = rtype == "communal"
    text = body.description.text
    if communal and body.description.locationText:
        text = f"Where: {body.description.locationText}\n{text}"
    property_id = body.address.locationId

    base_key = await _retry_key(call, rtype, raw)
    taken: set[datetime] = set()  # communal: slots the gateway chose that were gone

    async def choose_slot() -> str | None:
        t = body.time
        if communal or t is None:
            if not communal:
                raise InvalidInput("choose an appointment", field="time")
            for o in await _five_days(call, property_id, job, None):
                if o.slot.start not in taken:
                    taken.add(o.slot.start)
                    return o.token
            if call.council.config.accept_without_slot:
                return None
            raise SlotUnavailable("no appointments are available for this repair online")
        if t.id and flavour == "redbridge":
            return t.id  # the slot token, offered as the slot's id (N&S sends none)
        start = parse_time(t.startDateTime, "time.startDateTime")
        end = parse_time(t.endDateTime, "time.endDateTime")
        return await _find_slot(call, property_id, job, start, end)

    answer: dict[str, Any] = {}
    # communal bookings take the earliest slot: if it went meanwhile, the next (a new key, as
    # the refusal is kept for retries of the first)
    for attempt in range(3 if communal else 1):
        key = base_key if attempt == 0 else f"{base_key}:{attempt}"
        replayed = await _replayed(call, key)
        if replayed is None:
            req = NewRepair(
                property_id=property_id,
                sor_code=job.sor_code,
                trade=None,
                size=None,
                priority=job.priority,
                description=text,
                contact=contact,
                communal=communal,
                slot_token=await choose_slot(),
            )
            answer = await _create(call, key, req)
        else:
            answer = replayed
        if "reference" in answer:
            break
    if "reference" not in answer:  # a refusal kept for retries (the slot was taken)
        raise _stored_error(answer)
    reference = str(answer["reference"])
    details = {
        "flavour": flavour,
        "postcode": body.postcode,
        "address": {"display": body.address.display, "locationId": property_id},
        "location": {"value": loc.value, "display": body.location.display or loc.display},
        "problem": {"value": prob.value, "display": body.problem.display or prob.display},
        "issue": (
            {
                "value": iss.value,
                "display": (body.issue.display if body.issue else None) or iss.display,
            }
            if iss
            else None
        ),
        "locationText": body.description.locationText,
        "contactType": body.contactDetails.type,
    }
    await _remember(call, reference, rtype, property_id, details)
    if photo is not None:
        await store_photo(call.rt, call.council, call.hro, reference, photo)
    out: dict[str, Any] = {
        "reference": reference,
        "id": reference,
        "govNotifyStatus": await _notify_status(call, reference, contact),
    }
    if communal:
        out["daysForRepair"] = PRIORITY_TARGET_DAYS[
            Priority(str(answer.get("priority") or job.priority))
        ]
    return JSONResponse(out)


async def _create(call: Call, key: str, req: NewRepair) -> dict[str, Any]:
    """The standard booking; a slot that has gone comes back as its (kept) refusal."""
    try:
        _, answer = await call.rt.bookings.create(call.council, CLIENT_ID, key, req)
        return answer
    except SlotUnavailable as exc:
        return {"status": exc.status, "detail": exc.detail}
    except InvalidInput as exc:
        if exc.field != "Idempotency-Key":
            raise
        # the same body, at the same moment, from another request: answer as it does
        replayed = await _replayed(call, key)
        if replayed is None:
            raise Conflict("the same repair is being booked; try again in a moment") from None
        return replayed


def _stored_error(answer: dict[str, Any]) -> GatewayError:
    status = int(answer.get("status") or 409)
    detail = str(answer.get("detail") or "the booking could not be made")
    return SlotUnavailable(detail) if status == 409 else InvalidInput(detail)


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _retry_key(call: Call, repair_type: str, raw: Any) -> str:
    """The idempotency key for this body: the same body within the retry window is the same
    booking (these front ends send no Idempotency-Key). Keys are per window; the previous
    window's key is reused while its booking is younger than the window."""
    window = call.hro.retry_window_seconds
    if window <= 0:
        return f"hro:{uuid.uuid4().hex}"
    digest = await asyncio.to_thread(_digest, [call.council.id, repair_type, raw])
    bucket = int(now().timestamp() // window)
    current, previous = f"hro:{digest}:{bucket}", f"hro:{digest}:{bucket - 1}"
    async with call.rt.database.session() as s:
        rec = (
            await s.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.council == call.council.id,
                    IdempotencyRecord.client_id == CLIENT_ID,
                    IdempotencyRecord.key == previous,
                )
            )
        ).scalar_one_or_none()
    if rec is not None and now() - rec.created_at < timedelta(seconds=window):
        return previous
    return current


async def _replayed(call: Call, key: str) -> dict[str, Any] | None:
    """The first answer to this key, if it has one; 409 while it is still being booked."""
    async with call.rt.database.session() as s:
        rec = (
            await s.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.council == call.council.id,
                    IdempotencyRecord.client_id == CLIENT_ID,
                    IdempotencyRecord.key == key,
                )
            )
        ).scalar_one_or_none()
    if rec is None:
        return None
    if rec.state == "done" and rec.response_body is not None:
        return dict(rec.response_body)
    raise Conflict("this repair is still being booked; try again in a few seconds")


async def _remember(
    call: Call, reference: str, repair_type: str, property_id: str, details: dict[str, Any]
) -> None:
    from sqlalchemy.exc import IntegrityError

    async with call.rt.database.session() as s:
        exists = (
            await s.execute(
                select(HroRepair.id).where(
                    HroRepair.council == call.council.id, HroRepair.reference == reference
                )
            )
        ).scalar_one_or_none()
    if exists is not None:
        return
    try:
        async with call.rt.database.transaction() as s:
            s.add(
                HroRepair(
                    council=call.council.id,
                    reference=reference,
                    repair_type=repair_type,
                    property_id=property_id,
                    details=details,
                )
            )
    except IntegrityError:
        pass  # a concurrent retry recorded it


async def _notify_status(call: Call, reference: str, contact: Contact) -> str:
    """``success`` once GOV.UK Notify has accepted the confirmation (waiting up to
    ``notify_wait_seconds`` for the outbox, on any worker, to deliver it), ``failed`` if an
    attempt failed, ``pending`` if not yet delivered, ``not_sent`` when the council sends no
    confirmation to this contact. Redbridge says "We have sent a confirmation" only for
    ``success``."""
    notifier = call.rt.bookings.notifiers.get(call.council.id)
    if notifier is None:
        return "not_sent"
    cfg = notifier.config
    if not (
        ("booked" in cfg.sms_templates and contact.phone)
        or ("booked" in cfg.email_templates and contact.email)
    ):
        return "not_sent"
    call.rt.worker.wake()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + call.hro.notify_wait_seconds
    pause = 0.05
    while True:
        async with call.rt.database.session() as s:
            items = [
                i
                for i in (
                    await s.execute(
                        select(OutboxItem).where(
                            OutboxItem.council == call.council.id,
                            OutboxItem.kind == "notification.send",
                            OutboxItem.payload["reference"].as_string() == reference,
                        )
                    )
                ).scalars()
                if i.payload.get("event") == "booked"
            ]
        if items and all(i.state == "done" for i in items):
            return "success"
        if any(i.state == "dead" or (i.state != "done" and i.last_error) for i in items):
            return "failed"  # refused or unreachable: it may be retried, but it is not sent
        if loop.time() >= deadline:
            return "pending"
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        pause = min(pause * 2, 0.5)


# -- find, change, cancel ------------------------------------------------------------------


async def _own(call: Call, communal_ok: bool = False) -> tuple[Repair, HroRepair]:
    """The repair with this reference and postcode booked through the facade; 404 otherwise
    (the same answer for a wrong postcode as for an unknown reference)."""
    reference = call.need("repairId")
    postcode = call.need("postcode")
    missing = NotFound("no repair appointment with that reference and postcode", field="repairId")
    try:
        r = await call.rt.bookings.get_repair(call.council, reference)
    except NotFound:
        raise missing from None
    async with call.rt.database.session() as s:
        row = (
            await s.execute(
                select(HroRepair).where(
                    HroRepair.council == call.council.id, HroRepair.reference == r.reference
                )
            )
        ).scalar_one_or_none()
    if row is None or not same_postcode(r.postcode or row.details.get("postcode"), postcode):
        raise missing
    if row.repair_type == "communal" and not communal_ok:
        raise missing
    return r, row


def _choices(row: HroRepair) -> dict[str, Any]:
    d = row.details
    out = {"location": d.get("location"), "problem": d.get("problem")}
    if d.get("issue"):
        out["issue"] = d["issue"]
    return out


async def find(call: Call, _: str | None) -> Response:
    r, row = await _own(call)
    if r.status not in ("booked", "booking", "in_progress") or not (r.slot_start and r.slot_end):
        raise NotFound("no repair appointment with that reference and postcode", field="repairId")
    contact = r.contact or {}
    ctype = row.details.get("contactType") or ("email" if contact.get("email") else "text")
    return JSONResponse(
        {
            "id": r.reference,
            "reference": r.reference,
            "address": row.details.get("address"),
            **_choices(row),
            "appointmentTime": {
                "startDateTime": wall_clock(r.slot_start),
                "endDateTime": wall_clock(r.slot_end),
                "display": slot_display(r.slot_start, r.slot_end),
            },
            "contactDetails": {
                "type": ctype,
                "value": contact.get("email") if ctype == "email" else contact.get("phone"),
            },
            "repairType": REPAIR_TYPE_OUT.get(row.repair_type, row.repair_type.upper()),
        }
    )


async def change(call: Call, _: str | None) -> Response:
    r, row = await _own(call)
    if r.status != "booked" or not r.scheduler:
        raise Conflict(f"repair {r.reference} has no appointment to move")
    body = _Time.model_validate(await _body(call.request))
    start = parse_time(body.startDateTime, "startDateTime")
    end = parse_time(body.endDateTime, "endDateTime")
    token = await _find_slot(call, r.property_id, handle_of(r).job, start, end, r.scheduler)
    await call.rt.bookings.reschedule(call.council, r.reference, token)
    return PlainTextResponse("The appointment has been changed")


async def cancel(call: Call, _: str | None) -> Response:
    r, _row = await _own(call)
    await call.rt.bookings.cancel(call.council, r.reference, "cancelled by resident")
    return PlainTextResponse("The repair has been cancelled")


async def communal_repairs(call: Call, _: str | None) -> Response:
    """Repairs already reported at a block or communal area (so residents do not report them
    twice): location, problem and issue as shown, and where - nothing a resident wrote."""
    property_id = call.need("propertyReference")
    async with call.rt.database.session() as s:
        rows = list(
            (
                await s.execute(
                    select(HroRepair, Repair)
                    .join(
                        Repair,
                        (Repair.council == HroRepair.council)
                        & (Repair.reference == HroRepair.reference),
                    )
                    .where(
                        HroRepair.council == call.council.id,
                        HroRepair.property_id == property_id,
                        HroRepair.repair_type == "communal",
                        Repair.status.in_(
                            ("booked", "booking", "awaiting_appointment", "in_progress")
                        ),
                    )
                    .order_by(HroRepair.id.desc())
                    .limit(100)
                )
            ).all()
        )
    out = []
    for hro_row, r in rows:
        choices = _choices(hro_row)
        out.append(
            {
                "id": r.reference,
                "location": choices["location"],
                "problem": choices["problem"],
                "issue": choices.get("issue") or {"value": "", "display": ""},
                "description": {"locationText": hro_row.details.get("locationText") or ""},
            }
        )
    return JSONResponse(out)


# -- the path table ------------------------------------------------------------------------

_ROUTES: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"^/authentication$"), "POST", authentication),
    (re.compile(r"^/addresses$"), "GET", addresses),
    (re.compile(rf"^/addresses/{T}addresses$"), "GET", addresses),
    (re.compile(rf"^/repairtriage/{T}repairtriageoptions$"), "GET", triage_options),
    (re.compile(r"^/appointments/availableappointments$"), "GET", appointments),
    (re.compile(rf"^/appointments/available{T}appointments$"), "GET", appointments),
    (re.compile(r"^/repair$"), "POST", book),
    (re.compile(rf"^/repair/{T}repair$"), "POST", book),
    (re.compile(r"^/repair/communalpropertyrepairs$"), "GET", communal_repairs),
    (re.compile(r"^/repair/tenantorleaseholdpropertyrepair$"), "GET", find),
    (
        re.compile(r"^/repair/tenantorleaseholdpropertyrepairchangeappointmentslot$"),
        "POST",
        change,
    ),
    (re.compile(r"^/repair/tenantorleaseholdpropertyrepaircancel$"), "POST", cancel),
]


def _match(path: str) -> tuple[Any, str | None, str]:
    for pattern, method, handler in _ROUTES:
        m = pattern.match(path)
        if m:
            return handler, (m.group(1) if m.groups() else None), method
    return None, None, ""

"""The read side of the standard API: councils, addresses, job resolution, appointments.

Routes stay thin; everything a front-end relies on (normalisation, routing, tokens) is here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from gateway.api.schemas import AddressList
from gateway.councils import Council
from gateway.routing import RouteRequest
from gateway.shadow import ShadowRunner
from gateway.storage.database import Database
from gateway.tokens import CursorState, TokenCodec
from repairs_gateway_sdk.errors import InvalidInput, NotFound
from repairs_gateway_sdk.model import (
    DEFAULT_SIZE_MINUTES,
    AvailabilityQuery,
    JobSize,
    JobSpec,
    Priority,
    Property,
    Trade,
    VendorSlot,
)
from repairs_gateway_sdk.postcodes import normalise_postcode
from repairs_gateway_sdk.timeutil import LONDON, london, today_london


@dataclass
class OfferedSlot:
    slot: VendorSlot
    token: str
    # the slot's start and end as they leave the gateway (Europe/London, with the offset)
    start_text: str = ""
    end_text: str = ""
    # the token as a JSON string, when already written (the codec's tokens are base64url
    # text and dots, which JSON writes as they are: no escaping to look for)
    token_json: str = ""


@dataclass
class AppointmentPage:
    slots: list[OfferedSlot]
    next_cursor: str | None
    adaptor: str


_ISO_TEXTS: dict[tuple[datetime, Any, int], str] = {}
ISO_TEXTS_KEPT = 20_000


def _iso(dt: datetime) -> str:
    """``dt.isoformat()``, remembered: adaptors offer the same slot times again and again
    (the CSV diary hands out the very same objects). The key holds the time zone and the
    fold, so equal instants written differently never share a text."""
    key = (dt, dt.tzinfo, dt.fold)
    text = _ISO_TEXTS.get(key)
    if text is None:
        if len(_ISO_TEXTS) >= ISO_TEXTS_KEPT:
            _ISO_TEXTS.clear()
        text = _ISO_TEXTS[key] = dt.isoformat()
    return text


ADDRESS_ANSWER_SECONDS = 15.0
ADDRESS_ANSWERS_KEPT = 4096
PROPERTY_SECONDS = 15.0  # a property found is kept this long for the same council's calls
PROPERTIES_KEPT = 4096

V = TypeVar("V")


class Recent(Generic[V]):
    """What a council's source answered lately: a least-recently-used map of at most
    ``size`` entries, each kept ``seconds`` at most and tied to the ``Council`` object it
    came from (a council replaced by a reload starts afresh). Only authenticated callers
    reach the gateway's: their keys are bounded, and so is this."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds, self.size = seconds, size
        self._entries: OrderedDict[tuple[str, str], tuple[float, Council, V]] = OrderedDict()

    def get(self, council: Council, key: str) -> V | None:
        hit = self._entries.get((council.id, key))
        if hit is not None and hit[1] is council and time.monotonic() - hit[0] < self.seconds:
            return hit[2]
        return None

    def put(self, council: Council, key: str, value: V) -> None:
        entries, k = self._entries, (council.id, key)
        entries[k] = (time.monotonic(), council, value)
        entries.move_to_end(k)
        while len(entries) > self.size:
            entries.popitem(last=False)


class Gateway:
    def __init__(
        self,
        councils: dict[str, Council],
        database: Database,
        codec: TokenCodec,
        shadow: ShadowRunner | None = None,
    ) -> None:
        self.councils = councils
        self.database = database
        self.codec = codec
        self.shadow = shadow or ShadowRunner(database)
        # rendered `addresses` answers per council and postcode (see address_answer), and
        # properties found per council and id (see find_property), kept briefly
        self._address_answers: Recent[bytes] = Recent(ADDRESS_ANSWER_SECONDS, ADDRESS_ANSWERS_KEPT)
        self._properties: Recent[Property] = Recent(PROPERTY_SECONDS, PROPERTIES_KEPT)

    def council(self, council_id: str) -> Council:
        council = self.councils.get(council_id)
        if council is None:
            raise NotFound(f"no council {council_id!r} is served here", field="council")
        return council

    # -- addresses ------------------------------------------------------------------------
    async def addresses(self, council: Council, raw_postcode: str) -> list[Property]:
        postcode = normalise_postcode(raw_postcode)
        if postcode is None:
            raise InvalidInput(f"{raw_postcode!r} is not a UK postcode", field="postcode")
        req = RouteRequest(council.id, "addresses", postcode=postcode)
        name = council.route(req)
        assert name is not None
        props = await council.address_source(name).addresses(postcode)
        shadow = council.shadow_for("addresses")
        if shadow and shadow != name:
            self.shadow.addresses(council, name, shadow, postcode, props)
        return props

    async def address_answer(self, council: Council, raw_postcode: str) -> bytes:
        """The ``addresses`` answer (JSON bytes), from a short-lived per-process cache.

        Property lists change on the scale of days (a new tenancy, a block marked for
        communal repairs), while residents and front ends ask for the same postcode many
        times in a few minutes (typing, going back, retrying). An answer is kept for
        ``ADDRESS_ANSWER_SECONDS`` at most, per council and normalised postcode, in a
        bounded LRU (only authenticated callers reach it). Failures are never kept.
        """
        postcode = normalise_postcode(raw_postcode)
        if postcode is None:
            raise InvalidInput(f"{raw_postcode!r} is not a UK postcode", field="postcode")
        data = self._address_answers.get(council, postcode)
        if data is None:
            props = await self.addresses(council, postcode)
            body = AddressList(council=council.id, postcode=postcode, addresses=props)
            data = body.model_dump_json().encode()
            self._address_answers.put(council, postcode, data)
        return data

    async def find_property(self, council: Council, property_id: str) -> Property:
        """The property, from the council's address sources (in its routes' order).

        A property found is kept for ``PROPERTY_SECONDS`` (as ``addresses`` answers are),
        per council and id (``Recent``): a resident's pages of appointments and their
        booking ask for the same property within moments, and a property's eligibility
        changes on the scale of days. A property not found, or a failing source, is never
        kept."""
        prop = self._properties.get(council, property_id)
        if prop is None:
            prop = await self._look_up_property(council, property_id)
            self._properties.put(council, property_id, prop)
        return prop

    async def _look_up_property(self, council: Council, property_id: str) -> Property:
        route = council.config.routes.addresses
        names = [r.use for r in route.rules] + [route.default]
        for name in dict.fromkeys(names):
            prop = await council.address_source(name).get_property(property_id)
            if prop is not None:
                return prop
        raise InvalidInput(
            f"no property {property_id!r} in council {council.id!r}", field="property_id"
        )

    # -- jobs -----------------------------------------------------------------------------
    def resolve_job(
        self,
        council: Council,
        *,
        sor_code: str | None,
        trade: Trade | None,
        size: JobSize | None,
        priority: Priority | None,
    ) -> JobSpec:
        if sor_code:
            mapping = council.table.get(sor_code)
            if mapping is None:
                raise InvalidInput(
                    f"SoR code {sor_code!r} is not known to council {council.id!r}",
                    field="sor_code",
                )
            if not mapping.enabled:
                raise InvalidInput(
                    f"SoR code {sor_code!r} is not bookable online", field="sor_code"
                )
            return JobSpec(
                sor_code=mapping.code,
                trade=mapping.trade,
                size=mapping.size,
                duration_minutes=mapping.duration_minutes,
                priority=mapping.priority or priority or Priority.NORMAL,
            )
        if trade is None or size is None:
            field = (
                "sor_code"
                if trade is None and size is None
                else ("trade" if trade is None else "size")
            )
            raise InvalidInput("give sor_code, or trade and size", field=field)
        return JobSpec(
            trade=trade,
            size=size,
            duration_minutes=DEFAULT_SIZE_MINUTES[size],
            priority=priority or Priority.NORMAL,
        )

    # -- appointments -----------------------------------------------------------------------
    def scheduler_for(
        self, council: Council, prop: Property, job: JobSpec, capability: str = "appointments"
    ) -> str:
        name = council.route(
            RouteRequest(
                council.id,
                capability,
                trade=job.trade,
                priority=job.priority,
                property_id=prop.id,
                postcode=prop.postcode,
            )
        )
        if name is None:
            raise NotFound(f"council {council.id!r} offers no online appointments", field="council")
        return name

    async def appointments(
        self,
        council: Council,
        property_id: str,
        job: JobSpec,
        start_from: date | None,
        cursor: str | None,
        page_size: int | None = None,
        scheduler: str | None = None,
    ) -> AppointmentPage:
        """Slots for a job at a property; ``scheduler`` pins the adaptor (moving a booking
        must use the system that holds it, whatever the routes say today)."""
        prop = await self.find_property(council, property_id)
        if not prop.online_repairs:
            raise InvalidInput(
                prop.ineligible_reason or "repairs here cannot be booked online",
                field="property_id",
            )
        resume: dict[str, Any] | None = None
        size = page_size or council.config.page_size
        if cursor:
            state = self.codec.read_cursor(cursor)
            search = (council.id, prop.id, job.compact())
            if (state.council, state.property_id, state.job) != search:
                raise InvalidInput("cursor belongs to a different search", field="cursor")
            name, resume, start = state.adaptor, state.resume, state.start_from
        else:
            name = scheduler or self.scheduler_for(council, prop, job)
            start = start_from or today_london()
        query = AvailabilityQuery(
            property=prop, job=job, start_from=start, page_size=size, resume=resume
        )
        page = await council.scheduler(name).availability(query)
        shadow = council.shadow_for("appointments")
        if shadow and shadow != name and not cursor:
            self.shadow.appointments(council, name, shadow, query, page.slots)
        jd = job.compact()
        # each time written once: the token carries the adaptor's own (as a SlotClaim does),
        # the page the London one, the same text when the adaptor answers in London time
        slots = page.slots
        claims, texts = [], []
        for s in slots:
            begins, ends = _iso(s.start), _iso(s.end)
            claims.append((begins, ends, s.label, s.vendor))
            texts.append(
                (
                    begins if s.start.tzinfo is LONDON else london(s.start).isoformat(),
                    ends if s.end.tzinfo is LONDON else london(s.end).isoformat(),
                )
            )
        tokens = self.codec.slot_tokens(council.id, name, prop.id, jd, claims)
        offered = [
            OfferedSlot(s, token, t[0], t[1], f'"{token}"')
            for s, token, t in zip(slots, tokens, texts, strict=True)
        ]
        next_cursor = None
        if page.resume is not None:
            next_cursor = self.codec.cursor(
                CursorState(council.id, name, prop.id, jd, start, page.resume)
            )
        return AppointmentPage(offered, next_cursor, name)

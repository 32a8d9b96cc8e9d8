"""Civica Universal Housing: properties (PropertyService) and works orders (RepairService)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from typing import Any, Generic, TypeVar

import httpx
import structlog
from zeep.wsdl import Document

from adaptors.civica_uh.client import (
    UHFailure,
    UHService,
    field,
    items,
    text,
)
from adaptors.civica_uh.config import CivicaUHConfig
from adaptors.civica_uh.mapping import (
    Details,
    alert_codes,
    asbestos_codes,
    details_from_dto,
    kind_of,
    normalise_postcode,
    summary_lines,
    to_property,
)
from repairs_gateway_sdk.adaptor import (
    HEALTH_PROBE_REFERENCE,
    AdaptorContext,
    AddressSource,
    WorksOrderSink,
)
from repairs_gateway_sdk.errors import BackendRejected, BackendUnavailable
from repairs_gateway_sdk.model import Property, PropertyKind, WorksOrder
from repairs_gateway_sdk.soap import (
    bounded_service,
    client_for,
    load_wsdl,
    parsed,
    wsdl_location,
)

log = structlog.get_logger("adaptors.civica_uh")
PROPERTY_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,19}$")
V = TypeVar("V")


class TTLCache(Generic[V]):
    """A small bounded cache with a freshness window and a longer stale-if-error window."""

    def __init__(self, fresh: float, stale: float, size: int = 20_000) -> None:
        self.fresh, self.stale, self.size = fresh, stale, size
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, *, stale: bool = False) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        age = time.monotonic() - hit[0]
        return hit[1] if age <= (self.stale if stale else self.fresh) else None

    def put(self, key: str, value: V) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class CivicaUHAdaptor(AddressSource, WorksOrderSink):
    type_name = "civica_uh"
    Config = CivicaUHConfig

    def __init__(self, config: CivicaUHConfig, context: AdaptorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.options = config
        self._http: httpx.AsyncClient | None = None
        self._property: UHService | None = None
        self._repair: UHService | None = None
        self._start_lock = asyncio.Lock()
        self._locations: list[str] | None = None  # the two WSDLs' locations
        self._sem = asyncio.Semaphore(config.max_concurrency)
        self._details = TTLCache[Details | None](config.cache_seconds, config.stale_seconds)
        self._known = TTLCache[Property](config.stale_seconds, config.stale_seconds)
        self._notes = TTLCache[list[str]](0, config.stale_seconds)

    # -- lifecycle ------------------------------------------------------------------------
    def _header(self) -> dict[str, Any]:
        o = self.options
        header: dict[str, Any] = {"SourceSystem": o.source_system, "UserId": o.user_id}
        if o.company_code:
            header["CompanyCode"] = o.company_code
        if o.username:
            header["DirectUser"] = {
                "UserName": o.username,
                "UserPassword": o.password.get_secret_value() if o.password else None,
            }
        return header

    async def start(self) -> None:
        await self._services()

    async def prepare(self) -> None:
        """What this adaptor shares with others, ready before its first call: its two WSDLs,
        parsed once per process and location (no client, connection or session of its own;
        the gateway's background warm-up calls it, see gateway/lifecycle.py)."""
        await self._wsdls()

    async def _wsdls(self) -> tuple[Document, Document]:
        o = self.options
        locations = self._locations
        if locations is None:  # worked out once (by the warm-up's prepare, before a first call)
            base = self.context.config_dir
            locations = [wsdl_location(wsdl, base) for wsdl in (o.property_wsdl, o.repair_wsdl)]
            self._locations = locations
        try:
            if all(parsed(loc) for loc in locations):  # two look-ups: no tasks, no threads
                docs = [await load_wsdl(loc, timeout=o.timeout_seconds) for loc in locations]
            else:
                docs = await asyncio.gather(
                    *(
                        load_wsdl(loc, timeout=o.timeout_seconds, max_bytes=o.max_reply_bytes)
                        for loc in locations
                    )
                )
        except Exception as exc:  # noqa: BLE001 - a WSDL we cannot load is an outage
            log.warning("civica_uh.wsdl_failed", adaptor=self.name, error=type(exc).__name__)
            raise BackendUnavailable(
                "Civica UH service description could not be loaded", retry_after=60
            ) from None
        return docs[0], docs[1]

    async def _services(self) -> tuple[UHService, UHService]:
        if self._property is not None and self._repair is not None:
            return self._property, self._repair
        async with self._start_lock:
            if self._property is None or self._repair is None:
                o = self.options
                prop_doc, rep_doc = await self._wsdls()
                # its own client (cookies, headers, a cap on connections in use) on the
                # process's shared connection pools; requests built with the WSDL's shared
                # zeep client: starting costs no zeep client, proxy or connection of its own
                http = client_for(o.timeout_seconds, max_connections=max(o.max_concurrency * 2, 10))
                header = self._header()

                def service(document: Document, endpoint: str | None) -> UHService:
                    bounded = bounded_service(
                        document,
                        http,
                        endpoint=endpoint,
                        system="Civica UH",
                        timeout=o.timeout_seconds,
                        max_reply_bytes=o.max_reply_bytes,
                    )
                    return UHService(bounded, header=header, read_attempts=o.read_attempts)

                self._http = http
                self._property = service(prop_doc, o.property_endpoint)
                self._repair = service(rep_doc, o.repair_endpoint)
        assert self._property is not None and self._repair is not None
        return self._property, self._repair

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http, self._property, self._repair = None, None, None

    async def check_health(self) -> None:
        """A cheap read of UH (a property reference that does not exist): any answer, even a
        refusal such as "not found", means UH is up and took the gateway's credentials."""
        prop, _ = await self._services()
        try:
            await prop.call("GetPropertyByRef", read=True, PropertyReference=HEALTH_PROBE_REFERENCE)
        except UHFailure:
            pass

    # -- properties -------------------------------------------------------------------------
    async def _fetch_details(self, ref: str) -> Details | None:
        cached = self._details.get(ref)
        if cached is not None:
            return cached
        prop, _ = await self._services()
        async with self._sem:
            try:
                reply = await prop.call("GetPropertyByRef", read=True, PropertyReference=ref)
            except UHFailure as exc:
                if exc.not_found:
                    return None
                raise
        dto = field(reply, "Property")
        details = None if dto is None else details_from_dto(ref, dto)
        self._details.put(ref, details)
        return details

    async def _many(self, refs: list[str]) -> dict[str, Details | None]:
        unique = list(dict.fromkeys(refs))
        found = await asyncio.gather(*(self._fetch_details(r) for r in unique))
        return dict(zip(unique, found, strict=True))

    async def addresses(self, postcode: str) -> list[Property]:
        prop, _ = await self._services()
        reply = await prop.call(
            "GetPropertyListByPostCode",
            read=True,
            PostCode=postcode,
            MaxRecords=self.options.max_records,
        )
        summaries = [
            s
            for s in items(reply, "PropertyList", "PropertySummary")
            if text(s, "PropertyReference")
        ]
        refs = [str(text(s, "PropertyReference")) for s in summaries]
        details = await self._many(refs)
        kinds = self.options.level_kinds
        result: list[Property] = []
        for s, ref in zip(summaries, refs, strict=True):
            d = details.get(ref)
            if d is None:
                continue  # listed but gone since: not offered
            kind = kind_of(kinds, text(s, "LevelDescription"), d.level)
            result.append(
                to_property(
                    reference=ref,
                    lines=summary_lines(s) or list(d.lines),
                    postcode=normalise_postcode(text(s, "PostCodeValue") or d.postcode, postcode),
                    kind=kind,
                    details=d,
                    tenure=text(s, "TenureDescription"),
                )
            )
        # communal repairs are reported against the block: offer each dwelling's block
        listed = {p.id for p in result}
        parents = [
            p.parent_id
            for p in result
            if p.kind == PropertyKind.DWELLING and p.parent_id and p.parent_id not in listed
        ]
        if parents:
            for d in (await self._many(parents)).values():
                if d is None or kind_of(kinds, d.level) != PropertyKind.COMMUNAL_BLOCK:
                    continue
                result.append(self._standalone(d, postcode))
        for p in result:
            self._known.put(p.id, p)
        log.info("civica_uh.addresses", adaptor=self.name, count=len(result))
        return result

    def _standalone(self, d: Details, fallback_postcode: str) -> Property:
        return to_property(
            reference=d.reference,
            lines=list(d.lines),
            postcode=normalise_postcode(d.postcode, fallback_postcode),
            kind=kind_of(self.options.level_kinds, d.level),
            details=d,
        )

    async def get_property(self, property_id: str) -> Property | None:
        ref = property_id.strip()
        if not PROPERTY_REF.match(ref):
            return None
        try:
            d = await self._fetch_details(ref)
            if d is None:
                return None
            if d.postcode:
                for p in await self.addresses(normalise_postcode(d.postcode, d.postcode)):
                    if p.id == ref:
                        return p
            prop = self._standalone(d, d.postcode or "")
            self._known.put(prop.id, prop)
            return prop
        except BackendUnavailable:
            stale = self._known.get(ref, stale=True)
            if stale is not None:
                log.info("civica_uh.stale_property", adaptor=self.name)
                return stale
            raise

    async def operative_notes(self, property_id: str) -> list[str]:
        prop, _ = await self._services()
        ref = property_id.strip()
        try:
            alerts, hazards = await asyncio.gather(
                prop.call("GetPropertyAlerts", read=True, PropertyReference=ref),
                prop.call("GetPropertyAsbestosHazards", read=True, PropertyReference=ref),
            )
            details = self._details.get(ref, stale=True)
            codes = alert_codes(alerts) + asbestos_codes(
                hazards, details.asbestos if details else None
            )
        except BackendUnavailable:
            stale = self._notes.get(ref, stale=True)
            if stale is not None:
                return stale
            raise
        notes = list(dict.fromkeys(codes))
        self._notes.put(ref, notes)
        log.info("civica_uh.operative_notes", adaptor=self.name, count=len(notes))
        return notes

    # -- works orders ------------------------------------------------------------------------
    async def find_works_order(self, reference: str) -> str | None:
        """The UH order already raised for a gateway reference, if any (lost replies)."""
        _, repair = await self._services()
        try:
            found = await repair.call(
                "GetRepairRequestByReference", read=True, RequestReference=reference
            )
        except UHFailure as exc:
            if exc.not_found:
                return None
            raise
        if text(field(found, "RepairRequest"), "Reference") is None:
            return None
        orders = await repair.call("GetWorksOrdersByRequest", read=True, RequestReference=reference)
        for order in items(orders, "WorksOrderList", "WorksOrderDto"):
            ref = text(order, "OrderReference")
            if ref:
                return ref
        raise BackendRejected(
            f"Civica UH holds repair request {reference} without a works order; "
            "raise the order by hand"
        )

    async def raise_works_order(self, order: WorksOrder) -> str:
        o = self.options
        existing = await self.find_works_order(order.reference)
        if existing is not None:
            log.info("civica_uh.works_order_found", reference=order.reference, order_ref=existing)
            return existing
        if not order.job.sor_code:
            raise BackendRejected("Civica UH needs an SoR code (JobCode) to raise a works order")
        _, repair = await self._services()
        priority = o.priority_codes.get(order.job.priority, "N")
        task: dict[str, Any] = {
            "EstimatedUnits": o.estimated_units,
            "JobCode": order.job.sor_code,
            "PriorityCode": priority,
            "PropertyReference": order.property_id,
        }
        supplier = o.supplier_by_sor.get(order.job.sor_code, o.supplier_reference)
        if supplier:
            task["SupplierReference"] = supplier
        request = {
            "Name": order.contact.name,
            "Phone": order.contact.phone,
            "Priority": priority,
            "Problem": order.description[: o.problem_max_chars],
            "PropertyRef": order.property_id,
            "RequestReference": order.reference,
        }
        reply = await repair.call(
            "CreateRepairWithOrder",
            read=False,
            RepairRequest=request,
            TaskList={"RepairTaskInfo": [task]},
        )
        for wo in items(reply, "WorksOrderList", "WorksOrderDto"):
            ref = text(wo, "OrderReference")
            if ref:
                log.info("civica_uh.works_order_raised", reference=order.reference, order_ref=ref)
                return ref
        raise BackendUnavailable(
            "Civica UH created the repair but named no works order; it will be looked up again",
            retry_after=30,
        )

    async def cancel_works_order(self, vendor_ref: str) -> None:
        _, repair = await self._services()
        try:
            await repair.call("CancelOrder", read=False, OrderReference=vendor_ref)
        except UHFailure as exc:
            if exc.not_found or "already" in exc.message.lower():
                log.info("civica_uh.cancel_noop", order_ref=vendor_ref)
                return
            raise
        log.info("civica_uh.works_order_cancelled", order_ref=vendor_ref)

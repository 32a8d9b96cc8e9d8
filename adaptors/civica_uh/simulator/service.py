"""The simulated UH behaviour: PropertyService and RepairService operations over the seed."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from lxml import etree

from adaptors.civica_uh.simulator.data import SimProperty, seed
from adaptors.civica_uh.simulator.soapxml import SoapFault, child, value

TARGET_DAYS = {"I": 0, "E": 1, "U": 5, "N": 21}
JOB_CODE = re.compile(r"^[A-Z0-9]{5,10}$")


def ok(**extra: Any) -> dict[str, Any]:
    return {"ErrorCode": 0, "ErrorMessage": None, "Success": True, **extra}


def refused(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"ErrorCode": code, "ErrorMessage": message, "Success": False, **extra}


@dataclass
class Faults:
    latency_ms: int = 0
    mode: str | None = None
    operations: list[str] | None = None
    times: int | None = None
    timeout_seconds: float = 30.0

    def applies(self, op: str) -> str | None:
        if self.mode is None or (self.operations and op not in self.operations):
            return None
        if self.times is not None:
            if self.times <= 0:
                return None
            self.times -= 1
        return self.mode


@dataclass
class UHState:
    username: str = "gateway"
    password: str = "secret"
    properties: dict[str, SimProperty] = field(default_factory=seed)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_order: int = 100001
    next_request: int = 1

    def reset(self) -> None:
        with self.lock:
            self.properties = seed()
            self.requests.clear()
            self.orders.clear()
            self.calls.clear()
            self.faults = Faults()
            self.next_order, self.next_request = 100001, 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "orders": [
                {
                    k: o[k]
                    for k in (
                        "OrderReference",
                        "RepairRequestReference",
                        "PropertyReference",
                        "JobCode",
                        "PriorityCode",
                        "SupplierReference",
                        "StatusCode",
                    )
                }
                for o in self.orders.values()
            ],
            "calls": dict(self.calls),
            "faults": {
                "mode": self.faults.mode,
                "latency_ms": self.faults.latency_ms,
                "operations": self.faults.operations,
                "times": self.faults.times,
            },
        }

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, op: str, op_el: etree._Element) -> dict[str, Any]:
        dto = child(op_el, "dto")
        if dto is None:
            raise SoapFault(
                "Object reference not set to an instance of an object.", code="s:Server"
            )
        user = child(dto, "DirectUser")
        if value(user, "UserName") != self.username or value(user, "UserPassword") != self.password:
            raise SoapFault("Authentication failed: invalid user name or password.")
        if not value(dto, "SourceSystem"):
            return refused(10, "Source system is required")
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            return getattr(self, f"op_{op}")(dto)

    # -- PropertyService ---------------------------------------------------------------------
    def op_GetPropertyListByPostCode(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        raw = value(dto, "PostCode") or ""
        wanted = "".join(raw.split()).upper()
        if not wanted:
            return refused(20, "Post code is required")
        limit = int(value(dto, "MaxRecords") or 500)
        found = [
            p.summary()
            for p in self.properties.values()
            if "".join(p.postcode.split()).upper() == wanted
        ][:limit]
        return ok(PropertyList=("PropertySummary", found))

    def _prop(self, dto: etree._Element) -> SimProperty | None:
        return self.properties.get(value(dto, "PropertyReference") or "")

    def op_GetPropertyByRef(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        p = self._prop(dto)
        if p is None:
            return refused(30, "Property not found", Property=None)
        return ok(Property=p.dto())

    def op_GetPropertyAlerts(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        p = self._prop(dto)
        if p is None:
            return refused(30, "Property not found")
        alerts = [
            {
                "Category": a["Category"],
                "Description": a["Description"],
                "Reference": a["Reference"],
            }
            for a in p.alerts
        ]
        return ok(KeyObjectAlertMessages=("KeyObjectAlertMessageDto", alerts))

    def op_GetPropertyAsbestosHazards(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        p = self._prop(dto)
        if p is None:
            return refused(30, "Property not found")
        hazards = [
            {
                "HazardAdvise": h["HazardAdvise"],
                "HazardDescription": h["HazardDescription"],
                "HazardReference": h["HazardReference"],
                "PropertyReference": p.reference,
            }
            for h in p.hazards
        ]
        return ok(PropertyHazardList=("PropertyHazardInfo", hazards))

    # -- RepairService -------------------------------------------------------------------------
    def op_CreateRepairWithOrder(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        req = child(dto, "RepairRequest")
        tasks_el = child(dto, "TaskList")
        tasks = [] if tasks_el is None else list(tasks_el)
        if req is None:
            return refused(100, "Repair request is required", WorksOrderList=None)
        prop = self.properties.get(value(req, "PropertyRef") or "")
        priority = value(req, "Priority") or ""
        problem = value(req, "Problem") or ""
        ref = value(req, "RequestReference")
        if prop is None:
            return refused(101, "Property not found", WorksOrderList=None)
        if prop.no_maintenance:
            return refused(102, "No maintenance is allowed on this property", WorksOrderList=None)
        if priority not in TARGET_DAYS:
            return refused(103, "Priority code is not valid", WorksOrderList=None)
        if not problem:
            return refused(104, "Problem description is required", WorksOrderList=None)
        if not tasks:
            return refused(105, "At least one task is required", WorksOrderList=None)
        for t in tasks:
            code = value(t, "JobCode") or ""
            if not JOB_CODE.match(code):
                return refused(106, "Job code is not on the schedule of rates", WorksOrderList=None)
            if (value(t, "PropertyReference") or "") not in self.properties:
                return refused(101, "Property not found", WorksOrderList=None)
        if ref and ref in self.requests:
            return refused(
                107, "A repair request with this reference already exists", WorksOrderList=None
            )
        if not ref:
            ref = f"{self.next_request:08d}"
            self.next_request += 1
        due = date.today() + timedelta(days=TARGET_DAYS[priority])
        self.requests[ref] = {
            "Reference": ref,
            "PriorityCode": priority,
            "PropertyReference": prop.reference,
            "Problem": problem,
            "Name": value(req, "Name"),
            "StatusCode": "000",
            "OverallStatus": "In Progress",
            "DateDue": due,
        }
        created = []
        for t in tasks:
            order_ref = f"{self.next_order:08d}"
            self.next_order += 1
            order = {
                "DateDue": due,
                "JobCode": value(t, "JobCode"),
                "OrderReference": order_ref,
                "PropertyReference": value(t, "PropertyReference"),
                "RepairRequestReference": ref,
                "StatusCode": "200",
                "SupplierReference": value(t, "SupplierReference"),
                "PriorityCode": value(t, "PriorityCode") or priority,
            }
            self.orders[order_ref] = order
            created.append(order)
        return ok(WorksOrderList=("WorksOrderDto", [_order_dto(o) for o in created]))

    def op_IssueOrder(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        order = self.orders.get(value(dto, "OrderReference") or "")
        if order is None:
            return refused(110, "Works order not found")
        if order["StatusCode"] == "700":
            return refused(111, "Works order is cancelled")
        order["StatusCode"] = "300"
        return ok()

    def op_CancelOrder(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        order = self.orders.get(value(dto, "OrderReference") or "")
        if order is None:
            return refused(110, "Works order not found")
        if order["StatusCode"] == "700":
            return refused(112, "Works order is already cancelled")
        order["StatusCode"] = "700"
        return ok()

    def op_GetRepairRequestByReference(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        req = self.requests.get(value(dto, "RequestReference") or "")
        if req is None:
            return refused(120, "Repair request not found", RepairRequest=None)
        return ok(
            RepairRequest={
                "DateDue": req["DateDue"],
                "Name": req["Name"],
                "OverallStatus": req["OverallStatus"],
                "PriorityCode": req["PriorityCode"],
                "Problem": req["Problem"],
                "PropertyReference": req["PropertyReference"],
                "Reference": req["Reference"],
                "StatusCode": req["StatusCode"],
            }
        )

    def op_GetWorksOrdersByRequest(self, dto: etree._Element) -> dict[str, Any]:  # noqa: N802
        ref = value(dto, "RequestReference") or ""
        if ref not in self.requests:
            return refused(120, "Repair request not found", WorksOrderList=None)
        found = [_order_dto(o) for o in self.orders.values() if o["RepairRequestReference"] == ref]
        return ok(WorksOrderList=("WorksOrderDto", found))


def _order_dto(o: dict[str, Any]) -> dict[str, Any]:
    return {
        k: o[k]
        for k in (
            "DateDue",
            "JobCode",
            "OrderReference",
            "PropertyReference",
            "RepairRequestReference",
            "StatusCode",
            "SupplierReference",
        )
    }

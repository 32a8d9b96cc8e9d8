"""Strangler routing: which adaptor serves a capability for a given request.

Rules are tried in order; the first that matches wins; otherwise the route's default. A rule
with ``percent`` matches a stable share of properties: the same property always goes the
same way (hash of council, capability and property id), so a gradual roll-out never moves a
resident back and forth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.config import CapabilityRoute, RouteRule
from repairs_gateway_sdk.model import Priority, Trade
from repairs_gateway_sdk.postcodes import area, outward


@dataclass(frozen=True)
class RouteRequest:
    council: str
    capability: str
    trade: Trade | None = None
    priority: Priority | None = None
    property_id: str | None = None
    postcode: str | None = None


def bucket(council: str, capability: str, property_id: str) -> float:
    """A stable number in [0, 100) for a property."""
    digest = hashlib.sha256(f"{council}|{capability}|{property_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def rule_matches(rule: RouteRule, req: RouteRequest) -> bool:
    if rule.trade is not None and (req.trade is None or req.trade not in rule.trade):
        return False
    if rule.priority is not None and (req.priority is None or req.priority not in rule.priority):
        return False
    if rule.property_ids is not None and req.property_id not in rule.property_ids:
        return False
    if rule.postcodes is not None:
        if req.postcode is None:
            return False
        wanted = {p.strip().upper() for p in rule.postcodes}
        if outward(req.postcode) not in wanted and area(req.postcode) not in wanted:
            return False
    if rule.percent is not None:
        key = req.property_id or req.postcode
        if key is None:
            return False
        return bucket(req.council, req.capability, key) < rule.percent
    return True


def choose(route: CapabilityRoute, req: RouteRequest) -> str:
    for rule in route.rules:
        if rule_matches(rule, req):
            return rule.use
    return route.default

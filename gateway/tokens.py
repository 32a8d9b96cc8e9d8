"""Opaque, signed slot tokens and page cursors.

A slot token carries what the owning adaptor needs to book the slot back (its vendor data),
plus the council, property and job it was offered for, signed so a client cannot forge or
alter one. See docs/decisions/0003-slot-tokens.md.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.errors import InvalidInput


class TokenCodec:
    def __init__(self, secret: str) -> None:
        self._slots = URLSafeSerializer(secret, salt="slot-token")
        self._cursors = URLSafeSerializer(secret, salt="page-cursor")

    def slot_token(self, payload: dict[str, Any]) -> str:
        return self._slots.dumps(payload)

    def read_slot_token(self, token: str, field: str = "slot_token") -> dict[str, Any]:
        try:
            data = self._slots.loads(token)
        except BadSignature:
            raise InvalidInput("slot token is not one this gateway issued", field=field) from None
        if not isinstance(data, dict):
            raise InvalidInput("slot token is malformed", field=field)
        return data

    def cursor(self, payload: dict[str, Any]) -> str:
        return self._cursors.dumps(payload)

    def read_cursor(self, cursor: str) -> dict[str, Any]:
        try:
            data = self._cursors.loads(cursor)
        except BadSignature:
            raise InvalidInput("cursor is not one this gateway issued", field="cursor") from None
        if not isinstance(data, dict):
            raise InvalidInput("cursor is malformed", field="cursor")
        return data

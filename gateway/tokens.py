"""Opaque, signed slot tokens and page cursors.

A slot token carries what the owning adaptor needs to book the slot back (its vendor data),
plus the council, property and job it was offered for, signed so a client cannot forge or
alter one. See docs/decisions/0003-slot-tokens.md.

Format: base64url(compact JSON) "." base64url(HMAC-SHA256[:16]) with one key per kind
(derived from the gateway secret). Python's ``hmac`` with a pre-keyed object copied per token:
a page of slots makes ten tokens, and itsdangerous (key derivation and zlib on every token)
was the largest single cost of the appointments call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from gateway.errors import InvalidInput

SIGNATURE_BYTES = 16


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class _Signer:
    def __init__(self, secret: str, kind: str) -> None:
        key = hmac.new(secret.encode(), f"repairs-gateway:{kind}".encode(), hashlib.sha256)
        self._mac = hmac.new(key.digest(), digestmod=hashlib.sha256)

    def _signature(self, body: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(body)
        return _b64(mac.digest()[:SIGNATURE_BYTES])

    def dumps(self, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        return (body + b"." + self._signature(body)).decode()

    def loads(self, token: str) -> Any:
        body, _, signature = token.encode().rpartition(b".")
        if not body or not hmac.compare_digest(signature, self._signature(body)):
            raise ValueError("bad signature")
        return json.loads(_unb64(body))


class TokenCodec:
    def __init__(self, secret: str) -> None:
        self._slots = _Signer(secret, "slot-token")
        self._cursors = _Signer(secret, "page-cursor")

    @staticmethod
    def _read(signer: _Signer, token: str, field: str, what: str) -> dict[str, Any]:
        try:
            data = signer.loads(token)
        except (ValueError, UnicodeError):
            raise InvalidInput(f"{what} is not one this gateway issued", field=field) from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{what} is malformed", field=field)
        return data

    def slot_token(self, payload: dict[str, Any]) -> str:
        return self._slots.dumps(payload)

    def read_slot_token(self, token: str, field: str = "slot_token") -> dict[str, Any]:
        return self._read(self._slots, token, field, "slot token")

    def cursor(self, payload: dict[str, Any]) -> str:
        return self._cursors.dumps(payload)

    def read_cursor(self, cursor: str) -> dict[str, Any]:
        return self._read(self._cursors, cursor, "cursor", "cursor")

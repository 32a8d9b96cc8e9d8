"""Opaque, signed slot tokens and page cursors, and the one model of what each carries.

A slot token carries what the owning adaptor needs to book the slot back (its vendor data),
plus the council, property and job it was offered for, signed so a client cannot forge or
alter one. A cursor carries where the next page of a search starts. Both are written and read
only here (``SlotClaim``, ``CursorState``). See docs/decisions/0003-slot-tokens.md.

Format: ``2.`` base64url(compact JSON) ``.`` base64url(HMAC-SHA256[:16]); the version is part
of what is signed. One key per kind, derived from the gateway secret; new tokens are signed
with the newest secret, and older secrets (``GATEWAY_SECRET_KEYS_PREVIOUS``) still verify, so
a secret can be rotated without refusing the pages residents have open. Every token expires
(``GATEWAY_TOKEN_LIFETIME_SECONDS``, four hours by default) and says so when it has. The MAC
is HMAC-SHA256 computed from its two keyed SHA-256 states, copied per token (``_mac``, held to
``hmac`` by a test): a page of slots makes ten tokens, and what they share is hashed once.

Anything that decodes but does not hold what this version writes is refused as malformed
(422 naming the field), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from repairs_gateway_sdk.errors import InvalidInput

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_string = json.encoder.encode_basestring  # a JSON string, as _compact writes one


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json's C encoder, made once: JSONEncoder.encode makes one per call, most of the cost of a
# small value. Without the circular-reference check (a cycle fails as a RecursionError)
_make: Any = getattr(json.encoder, "c_make_encoder", None)  # None without the C accelerator
_c_encoder = _make(None, _not_json, _string, None, ":", ",", False, False, True) if _make else None


def compact_json(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, cheaper (a slot's
    vendor data is most often a small map of text to text: written out directly)."""
    if isinstance(value, str):
        return _string(value)
    if type(value) is dict and 0 < len(value) <= 4:
        parts = []
        for k, v in value.items():
            if type(k) is not str or type(v) is not str:
                break
            parts.append(f"{_string(k)}:{_string(v)}")
        else:
            return "{" + ",".join(parts) + "}"
    if _c_encoder is None:
        return _compact(value)
    return "".join(_c_encoder(value, 0))


SIGNATURE_BYTES = 16
VERSION = b"2"
DEFAULT_LIFETIME_SECONDS = 4 * 3600


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """base64url without padding (``base64.urlsafe_b64encode`` without its two calls)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 keyed with ``key`` as its two SHA-256 states (RFC 2104): the inner one
    after the key's inner pad, the outer one after its outer pad. A MAC of ``m`` is then the
    outer state fed the inner state's digest of ``m`` (``_mac``), as ``hmac`` computes it,
    and a page of tokens can feed the inner state what they all begin with only once."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(padded.translate(_IPAD)), hashlib.sha256(padded.translate(_OPAD))


_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _mac(inner: Any, outer: Any, message: bytes) -> bytes:
    """The signature (base64url of the truncated HMAC) of ``message`` fed to ``inner``, a copy
    of a keyed inner state (perhaps already fed the message's beginning)."""
    inner = inner.copy()
    inner.update(message)
    mac = outer.copy()
    mac.update(inner.digest())
    return _b64(mac.digest()[:SIGNATURE_BYTES])


class _Signer:
    def __init__(self, secrets: Sequence[str], kind: str) -> None:
        self._pads = []
        for secret in secrets:
            key = hmac.new(secret.encode(), f"repairs-gateway:{kind}".encode(), hashlib.sha256)
            self._pads.append(_hmac_pads(key.digest()))

    def dumps(self, payload: dict[str, Any]) -> str:
        return self.sign(compact_json(payload))

    def sign(self, payload_json: str) -> str:
        """The token of a payload already written as compact JSON."""
        signed = VERSION + b"." + _b64(payload_json.encode())
        inner, outer = self._pads[0]
        return (signed + b"." + _mac(inner, outer, signed)).decode()

    def sign_many(self, head: str, bodies: Iterable[str]) -> list[str]:
        """``[sign(head + body) for body in bodies]``, the part they share encoded and hashed
        once: base64 runs in groups of three bytes, so ``head``'s whole groups are encoded
        once and the rest of each payload after them; the inner hash state is copied from one
        already fed the version and those groups."""
        head_bytes = head.encode()
        whole = len(head_bytes) - len(head_bytes) % 3
        carry = head_bytes[whole:]
        prefix = VERSION + b"." + _b64(head_bytes[:whole])  # no padding: whole groups
        inner, outer = self._pads[0]
        inner = inner.copy()
        inner.update(prefix)
        # _b64 and _mac written out (a page signs ten or more): the same bytes, fewer calls
        b64, urlsafe, copy_inner, copy_outer = binascii.b2a_base64, _URLSAFE, inner.copy, outer.copy
        tokens = []
        for body in bodies:
            rest = b64(carry + body.encode(), newline=False).translate(urlsafe).rstrip(b"=")
            h = copy_inner()
            h.update(rest)
            mac = copy_outer()
            mac.update(h.digest())
            sig = b64(mac.digest()[:SIGNATURE_BYTES], newline=False).translate(urlsafe)
            tokens.append((prefix + rest + b"." + sig.rstrip(b"=")).decode())
        return tokens

    def loads(self, token: str) -> Any:
        signed, _, signature = token.encode().rpartition(b".")
        version, _, body = signed.partition(b".")
        if version != VERSION or not body:
            raise ValueError("not this version")
        if not any(
            hmac.compare_digest(signature, _mac(inner, outer, signed))
            for inner, outer in self._pads
        ):
            raise ValueError("bad signature")
        return json.loads(_unb64(body))


@dataclass(frozen=True)
class SlotClaim:
    """What a slot token carries: the slot an adaptor offered, and for what."""

    council: str
    adaptor: str
    property_id: str
    job: list[Any]  # JobSpec.compact()
    start: datetime
    end: datetime
    label: str
    vendor: dict[str, Any]

    def _wire(self) -> dict[str, Any]:
        return {
            "c": self.council,
            "a": self.adaptor,
            "p": self.property_id,
            "j": self.job,
            "s": self.start.isoformat(),
            "e": self.end.isoformat(),
            "l": self.label,
            "v": self.vendor,
        }

    @classmethod
    def _from_wire(cls, d: dict[str, Any]) -> SlotClaim:
        vendor = d.get("v") or {}
        if not isinstance(vendor, dict):
            raise TypeError("vendor data")
        start, end = datetime.fromisoformat(d["s"]), datetime.fromisoformat(d["e"])
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive time")
        return cls(
            council=_text(d["c"]),
            adaptor=_text(d["a"]),
            property_id=_text(d["p"]),
            job=_list(d["j"]),
            start=start,
            end=end,
            label=_text(d["l"]),
            vendor=vendor,
        )


@dataclass(frozen=True)
class CursorState:
    """What a page cursor carries: the search it continues and the adaptor's resume point."""

    council: str
    adaptor: str
    property_id: str
    job: list[Any]
    start_from: date
    resume: dict[str, Any] | None

    def _wire(self) -> dict[str, Any]:
        return {
            "c": self.council,
            "a": self.adaptor,
            "p": self.property_id,
            "j": self.job,
            "f": self.start_from.isoformat(),
            "r": self.resume,
        }

    @classmethod
    def _from_wire(cls, d: dict[str, Any]) -> CursorState:
        resume = d.get("r")
        if resume is not None and not isinstance(resume, dict):
            raise TypeError("resume")
        return cls(
            council=_text(d["c"]),
            adaptor=_text(d["a"]),
            property_id=_text(d["p"]),
            job=_list(d["j"]),
            start_from=date.fromisoformat(d["f"]),
            resume=resume,
        )


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


class TokenCodec:
    def __init__(
        self,
        secret: str,
        previous: Sequence[str] = (),
        *,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret, *(p for p in previous if p and p != secret)]
        self._slots = _Signer(secrets, "slot-token")
        self._cursors = _Signer(secrets, "page-cursor")
        self.lifetime = lifetime_seconds
        self.clock = clock

    def _write(self, signer: _Signer, wire: dict[str, Any]) -> str:
        return signer.dumps({**wire, "x": int(self.clock()) + self.lifetime})

    def _read(self, signer: _Signer, token: str, field: str, what: str) -> dict[str, Any]:
        try:
            data = signer.loads(token)
        except (ValueError, UnicodeError):
            raise InvalidInput(f"{what} is not one this gateway issued", field=field) from None
        if not isinstance(data, dict) or not isinstance(data.get("x"), int):
            raise InvalidInput(f"{what} is malformed", field=field)
        if data["x"] < self.clock():
            raise InvalidInput(
                f"{what} has expired (they last {self.lifetime // 60} minutes); "
                "ask for appointments again",
                field=field,
            )
        return data

    def slot_token(self, claim: SlotClaim) -> str:
        return self._write(self._slots, claim._wire())

    def slot_tokens(
        self,
        council: str,
        adaptor: str,
        property_id: str,
        job: list[Any],
        slots: Iterable[tuple[str, str, str, dict[str, Any]]],
    ) -> list[str]:
        """The tokens of a page of slots offered together: ``slots`` are (start, end as ISO
        text, label, vendor data). Each is byte for byte what ``slot_token`` writes for that
        slot's ``SlotClaim`` (a test holds them to it); the part every slot of the page
        shares (council, adaptor, property, job, expiry) is written once."""
        shared = compact_json({"c": council, "a": adaptor, "p": property_id, "j": job})
        head = shared[:-1] + ',"s":"'
        tail = f',"x":{int(self.clock()) + self.lifetime}}}'
        return self._slots.sign_many(
            head,
            [
                f'{start}","e":"{end}","l":{_string(label)},"v":{compact_json(vendor)}{tail}'
                for start, end, label, vendor in slots
            ],
        )

    def read_slot_token(self, token: str, field: str = "slot_token") -> SlotClaim:
        data = self._read(self._slots, token, field, "slot token")
        try:
            return SlotClaim._from_wire(data)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("slot token is malformed", field=field) from None

    def cursor(self, state: CursorState) -> str:
        return self._write(self._cursors, state._wire())

    def read_cursor(self, cursor: str) -> CursorState:
        data = self._read(self._cursors, cursor, "cursor", "cursor")
        try:
            return CursorState._from_wire(data)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("cursor is malformed", field="cursor") from None

"""What text the gateway accepts at its edge: only what every backend can carry.

The legacy systems behind the gateway speak XML 1.0 (Civica UH, Kirona DRS) or store text in
databases that refuse NUL (PostgreSQL). A character they cannot carry must be refused where
it arrives, with the field named, never sent on: lxml refuses it while building a SOAP
request (an error that looks like an outage), and a vertical tab that slips through one
vendor can poison a works order in another.

Policy (docs/decisions/0009-text-at-the-edge.md):
- free text in bodies (descriptions, names, reasons): XML 1.0 characters only, with tab, line
  feed and carriage return allowed; C0 and C1 control characters, DEL, lone surrogates and
  the non-characters U+FFFE/U+FFFF are refused with 422 naming the field. Nothing is
  silently rewritten: what a resident typed is stored as typed, or refused.
- paths and query strings: no control character at all (not even tab or newline).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# Everything outside: tab, LF, CR, printable ASCII, U+00A0-U+D7FF, U+E000-U+FFFD, astral.
_UNSAFE = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# In a path or query value: also no tab, LF or CR.
_UNSAFE_IN_URL = re.compile("[^\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Percent-encoded or raw control bytes in a raw query string (checked before decoding; the
# precise field is found only when this matches): %00-%1F, %7F, C1 as UTF-8 (%C2%80-%C2%9F),
# surrogates as UTF-8 (%ED%A0-%ED%BF), U+FFFE/F (%EF%BF%BE/F), and raw bytes below 0x20.
_RAW_QUERY_SUSPECT = re.compile(
    rb"%[01][0-9a-fA-F]|%7[fF]|%[cC]2%[89][0-9a-fA-F]|%[eE][dD]%[aAbB][0-9a-fA-F]"
    rb"|%[eE][fF]%[bB][fF]%[bB][eEfF]|[\x00-\x1f\x7f]"
)


def first_unsafe(value: str, *, in_url: bool = False) -> int | None:
    """The position of the first character the backends cannot carry, or None."""
    m = (_UNSAFE_IN_URL if in_url else _UNSAFE).search(value)
    return None if m is None else m.start()


def describe(value: str, at: int) -> str:
    return f"contains a control or non-text character (U+{ord(value[at]):04X}) at position {at + 1}"


def _check(value: str) -> str:
    at = first_unsafe(value)
    if at is not None:
        raise PydanticCustomError("unsafe_text", describe(value, at))
    return value


SafeText = Annotated[str, AfterValidator(_check)]
"""A ``str`` field of a request body that the backends can carry (see the module notes)."""


def query_suspect(raw: bytes) -> bool:
    """Cheap pre-check of a raw query string: True when it may hold a control character."""
    return _RAW_QUERY_SUSPECT.search(raw) is not None

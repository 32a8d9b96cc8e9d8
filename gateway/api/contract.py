"""The published contract of the standard API: the catalogue of problem types (each served as
a page at ``/problems/{slug}``), the errors each operation can really give, and the headers a
front end can rely on. Routes declare their responses with ``responses(...)``; the document
``/openapi.json`` is then complete enough for a client generator.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from gateway.api.problems import PROBLEM
from gateway.problemdetails import BASE


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    when: str
    then: str  # what a front end should do
    example_detail: str


CATALOGUE: tuple[ProblemType, ...] = (
    ProblemType(
        "invalid-input",
        422,
        "Invalid input",
        "A field is missing, malformed or names something the council does not have (an "
        "unknown SoR code, a property that cannot report repairs online, a slot token that "
        "expired or was issued for another property). `errors` names each field.",
        "Show the message next to the field named in `errors[].field`; do not retry as is.",
        "check these fields: postcode",
    ),
    ProblemType(
        "backend-cannot-accept",
        422,
        "The council's system cannot accept this",
        "The council's system can never take this request as it is (for example characters it "
        "cannot store). It is the request, not an outage.",
        "Ask the resident to change what they entered; do not retry as is.",
        "Kirona DRS cannot accept the characters in this request",
    ),
    ProblemType(
        "unauthorized",
        401,
        "Missing or invalid API key",
        "No API key, or one that is unknown, revoked or expired.",
        "Check the key your service sends (`Authorization: Bearer rgw_...`).",
        "send an API key in the Authorization: Bearer header",
    ),
    ProblemType(
        "forbidden",
        403,
        "Not allowed",
        "The key is valid but not for this council, or its role does not allow the call.",
        "Use a key issued for this council (and role).",
        "this API key is not allowed to act for that council",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "No such council, or no such repair in this council (or not one this key booked).",
        "Check the council id or the reference.",
        "no repair 'ABCD-1234' in council 'demo'",
    ),
    ProblemType(
        "slot-unavailable",
        409,
        "Slot no longer available",
        "The chosen appointment was taken, or has started, between listing and booking.",
        "Fetch appointments again and let the resident choose another.",
        "that appointment was just taken; choose another",
    ),
    ProblemType(
        "conflict",
        409,
        "Conflict",
        "Another request for the same repair or Idempotency-Key is in progress, or the repair "
        "is in a state that does not allow this (e.g. moving a cancelled repair).",
        "Retry after a few seconds with the same Idempotency-Key, or fetch the repair.",
        "the first request with this Idempotency-Key is still being processed",
    ),
    ProblemType(
        "http-413",
        413,
        "Request too large",
        "The body is larger than the gateway accepts.",
        "Send a smaller body (descriptions are up to 2,000 characters).",
        "request bodies are limited to 65536 bytes",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The body is not sent as `application/json`.",
        "Send JSON with `Content-Type: application/json`.",
        "send the body as application/json",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "The key's allowance for this minute is used up (see the `RateLimit` headers).",
        "Wait for `Retry-After` seconds, then retry.",
        "rate limit for this API key reached",
    ),
    ProblemType(
        "backend-rejected",
        502,
        "Backend rejected the request",
        "The council's system answered and refused the request for a reason of its own.",
        "Tell the resident the council could not take the request online; offer phone.",
        "Civica UH refused the request (error 102)",
    ),
    ProblemType(
        "backend-auth-failed",
        502,
        "Backend refused the gateway's credentials",
        "The gateway's own credentials for the council's system were refused: a "
        "configuration problem for council IT, not the resident.",
        "Tell the resident to try later or phone; council IT is alerted by /health.",
        "Kirona DRS refused the gateway's credentials",
    ),
    ProblemType(
        "backend-unavailable",
        503,
        "Backend unavailable",
        "The council's system is down, slow or still starting. Nothing was booked.",
        "Retry after `Retry-After` seconds (with the same Idempotency-Key when booking).",
        "the backend is failing; the gateway is giving it a rest",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal error",
        "The gateway failed unexpectedly; nothing submitted was lost.",
        "Retry later; quote the X-Request-ID to council IT.",
        "the gateway failed unexpectedly; nothing you submitted was lost",
    ),
)
BY_SLUG = {p.slug: p for p in CATALOGUE}


def schema_name(p: ProblemType) -> str:
    return "".join(part.capitalize() for part in p.slug.replace("http-", "http").split("-")) + (
        "Problem"
    )


def problem_schemas() -> dict[str, Any]:
    """Components: the base ``Problem`` and one typed schema per problem type."""
    base: dict[str, Any] = {
        "type": "object",
        "description": "RFC 9457 problem details; `type` names the problem (see /problems).",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/FieldError"},
            },
        },
    }
    schemas: dict[str, Any] = {
        "Problem": base,
        "FieldError": {
            "type": "object",
            "required": ["field", "message"],
            "properties": {
                "field": {"type": "string", "description": "e.g. postcode, contact.phone"},
                "message": {"type": "string"},
            },
        },
    }
    for p in CATALOGUE:
        props = dict(base["properties"])
        props["type"] = {"type": "string", "enum": [BASE + p.slug]}
        props["status"] = {"type": "integer", "enum": [p.status]}
        schemas[schema_name(p)] = {
            **base,
            "title": schema_name(p),
            "description": f"{p.title}. {p.when} See /problems/{p.slug}.",
            "properties": props,
        }
    return schemas


HEADER_DOCS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit": {
        "description": 'the key\'s allowance left (IETF RateLimit fields): `"per-key";r=<left>;'
        "t=<seconds until it resets>`",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'the key\'s policy: `"per-key";q=<requests>;w=60`',
        "schema": {"type": "string"},
    },
    "X-Request-ID": {
        "description": "the request's id (yours if it looked like one); quote it to council IT",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "the new repair's URL",
        "schema": {"type": "string"},
    },
}
COMMON = ("X-Request-ID", "RateLimit", "RateLimit-Policy")

ERRORS_READ = (401, 403, 404, 422, 429, 502, 503)
ERRORS_WRITE = (401, 403, 404, 409, 413, 415, 422, 429, 502, 503)
ERRORS_LOCAL = (401, 403, 404, 422, 429)


def _headers(*names: str) -> dict[str, Any]:
    return {n: HEADER_DOCS[n] for n in names}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with its typed problem schema(s) and an
    example, and the headers that come with it."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        types = [p for p in CATALOGUE if p.status == status]
        refs = [{"$ref": f"#/components/schemas/{schema_name(p)}"} for p in types]
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        first = types[0]
        headers = list(COMMON)
        if status in (429, 503):
            headers.append("Retry-After")
        out[status] = {
            "description": "; or ".join(p.title for p in types),
            "headers": _headers(*headers),
            "content": {
                PROBLEM: {
                    "schema": schema,
                    "example": {
                        "type": BASE + first.slug,
                        "title": first.title,
                        "status": status,
                        "detail": first.example_detail,
                    },
                }
            },
        }
    return out


def success_headers(*extra: str) -> dict[str, Any]:
    return _headers(*COMMON, *extra)


def problems_page(slug: str | None = None) -> str:
    """A plain HTML page: every problem type, or one."""
    chosen = [BY_SLUG[slug]] if slug else list(CATALOGUE)
    rows = "\n".join(
        f'<section id="{p.slug}"><h2>{html.escape(p.title)} <small>({p.status})</small></h2>'
        f"<p><code>{html.escape(BASE + p.slug)}</code></p>"
        f"<p><strong>When:</strong> {html.escape(p.when)}</p>"
        f"<p><strong>What to do:</strong> {html.escape(p.then)}</p></section>"
        for p in chosen
    )
    title = "Problem types" if slug is None else chosen[0].title
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - Repairs gateway</title>"
        "<style>body{font-family:Arial,sans-serif;max-width:45em;margin:2em auto;"
        "line-height:1.5;color:#0b0c0c}code{background:#f3f2f1}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Every error is an RFC 9457 problem "
        "(<code>application/problem+json</code>) whose <code>type</code> is one of these.</p>"
        f"{rows}</body></html>"
    )

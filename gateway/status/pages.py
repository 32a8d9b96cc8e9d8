"""Routes and rendering of the status page (see gateway/status/__init__.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from gateway import audit
from gateway.auth import key_state
from gateway.outbox import drop, list_items, replay
from gateway.runtime import Runtime
from gateway.status.style import CSS
from gateway.storage.models import ApiKey, AuditEvent, OutboxItem, Repair

router = APIRouter(prefix="/status", include_in_schema=False)
COOKIE = "rgw_status"
SESSION_SECONDS = 8 * 3600
e = html.escape


# -- sessions ---------------------------------------------------------------------------------


def _signer(rt: Runtime) -> bytes:
    return hashlib.sha256(b"status-session:" + rt.settings.resolved_secret_key().encode()).digest()


def _sign(rt: Runtime, value: str) -> str:
    mac = hmac.new(_signer(rt), value.encode(), hashlib.sha256).hexdigest()
    return f"{value}.{mac}"


def _session_value(rt: Runtime, key_id: str) -> str:
    return _sign(rt, f"{key_id}:{int(time.time()) + SESSION_SECONDS}")


def _csrf(rt: Runtime, cookie: str) -> str:
    return hmac.new(_signer(rt), b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()[:32]


async def _admin(request: Request) -> ApiKey | None:
    """The admin key behind the session cookie, if it is still valid."""
    rt: Runtime = request.app.state.runtime
    cookie = request.cookies.get(COOKIE, "")
    value, _, mac = cookie.rpartition(".")
    if not value or not hmac.compare_digest(_sign(rt, value), cookie):
        return None
    key_id, _, expiry = value.partition(":")
    if not expiry.isdigit() or int(expiry) < time.time():
        return None
    row = await rt.keys.get(key_id)
    if row is None or row.role != "admin" or key_state(row) in ("revoked", "expired"):
        return None
    return row


def _may_see(row: ApiKey, council: str) -> bool:
    return council in row.councils or "*" in row.councils


def _page(title: str, body: str, *, signed_in: ApiKey | None = None, csrf: str = "") -> str:
    who = ""
    if signed_in is not None:
        who = (
            f'<form method="post" action="/status/logout" class="signout">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f"<span>Signed in with key <code>{e(signed_in.key_id)}</code> ({e(signed_in.name)})"
            '</span> <button type="submit" class="link">Sign out</button></form>'
        )
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{e(title)} - Repairs gateway status</title>
<style>{CSS}</style>
</head>
<body>
<a href="#main" class="skip">Skip to main content</a>
<header class="header"><div class="width"><a href="/status" class="brand">Repairs gateway</a>
<span class="service">Status for council IT</span>{who}</div></header>
<main id="main" class="width" tabindex="-1">
{body}
</main>
<footer class="footer width"><p>No personal data is shown on these pages. Times are
Europe/London.</p></footer>
</body>
</html>"""


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def _to_login(next_path: str = "/status") -> RedirectResponse:
    return RedirectResponse(f"/status/login?next={quote(next_path)}", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind these pages post), without python-multipart."""
    body = (await request.body())[:16_384].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


# -- login ------------------------------------------------------------------------------------


def _login_page(error: str | None = None, next_path: str = "/status") -> str:
    summary = ""
    field_error = ""
    if error:
        summary = (
            '<div class="error-summary" role="alert" aria-labelledby="error-title" tabindex="-1">'
            '<h2 id="error-title">There is a problem</h2>'
            f'<ul><li><a href="#key">{e(error)}</a></li></ul></div>'
        )
        field_error = f'<p id="key-error" class="field-error">{e(error)}</p>'
    ids = "key-hint key-error" if error else "key-hint"
    described = f' aria-describedby="{ids}"'
    return _page(
        "Sign in",
        f"""{summary}<h1>Sign in</h1>
<form method="post" action="/status/login" novalidate>
<input type="hidden" name="next" value="{e(next_path)}">
<div class="group{" group-error" if error else ""}">
<label for="key">Admin API key</label>
<p id="key-hint" class="hint">The key from <code>repairs-gateway keys create NAME --council
COUNCIL --role admin</code>. It starts <code>rgw_</code>.</p>
{field_error}<input id="key" name="key" type="password" autocomplete="current-password"
spellcheck="false" class="input"{described}>
</div>
<button type="submit" class="button" id="sign-in">Sign in</button>
</form>""",
    )


@router.get("/login")
async def login_form(request: Request, next: str = "/status") -> HTMLResponse:
    return _html(_login_page(next_path=next if next.startswith("/status") else "/status"))


@router.post("/login")
async def login(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    form = await _form(request)
    presented = str(form.get("key") or "").strip()
    next_path = str(form.get("next") or "/status")
    if not next_path.startswith("/status") or next_path.startswith("/status/login"):
        next_path = "/status"
    if not presented:
        return _html(_login_page("Enter an admin API key", next_path), 422)
    try:
        principal = await rt.keys.authenticate(presented)
    except Exception:  # noqa: BLE001 - any refusal reads the same
        await audit.record(
            rt.database, "status.login", key_id=None, council=None, outcome="refused"
        )
        return _html(_login_page("That key is not valid, or has expired", next_path), 401)
    if principal.role != "admin":
        await audit.record(
            rt.database,
            "status.login",
            key_id=principal.key_id,
            council=None,
            outcome="not-admin",
        )
        return _html(_login_page("That key is not an admin key", next_path), 403)
    await audit.record(rt.database, "status.login", key_id=principal.key_id, council=None)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        _session_value(rt, principal.key_id),
        max_age=SESSION_SECONDS,
        path="/status",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/status/login", status_code=303)
    response.delete_cookie(COOKIE, path="/status")
    return response


# -- pages ------------------------------------------------------------------------------------


@router.get("")
async def index(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    row = await _admin(request)
    if row is None:
        return _to_login()
    visible = [c for c in sorted(rt.councils) if _may_see(row, c)]
    items = "".join(
        f'<li><a href="/status/{e(c)}">{e(rt.councils[c].config.name)}</a> '
        f'<span class="muted">({e(c)})</span> {_council_tag(rt, c)}</li>'
        for c in visible
    )
    body = "<h1>Councils</h1>" + (
        f'<ul class="list">{items}</ul>' if items else "<p>This key is for no council served.</p>"
    )
    csrf = _csrf(rt, request.cookies.get(COOKIE, ""))
    return _html(_page("Councils", body, signed_in=row, csrf=csrf))


def _tag(word: str, kind: str) -> str:
    return f'<strong class="tag tag-{kind}">{e(word)}</strong>'


def _council_tag(rt: Runtime, cid: str) -> str:
    council = rt.councils[cid]
    if council.broken or council.not_ready:
        return _tag("problems", "red")
    for name in council.adaptors:
        result = rt.prober.result(cid, name)
        if result is not None and result.status == "fail":
            return _tag("problems", "red")
    return _tag("running", "green")


def _table(caption: str, head: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p>{e(empty)}</p>"
    th = "".join(f'<th scope="col">{e(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<table class="table"><caption class="visually-hidden">{e(caption)}</caption>'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
    )


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 90:
        return f"{s} s ago"
    if s < 5400:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def _when(dt: Any) -> str:
    from repairs_gateway_sdk.timeutil import london

    return london(dt).strftime("%d %b %Y %H:%M") if dt else "-"


async def _adaptors_section(rt: Runtime, council: Any, report: dict[str, Any]) -> str:
    calls: dict[str, list[str]] = {}
    for cap, entry in (report.get("capabilities") or {}).items():
        for name, a in entry.get("adaptors", {}).items():
            calls.setdefault(name, []).append(
                f"{e(cap)}: {a['calls']} calls, {a['error_rate'] * 100:.1f}% errors"
                + (f", mean {a['mean_ms']} ms" if a.get("mean_ms") is not None else "")
            )
    rows = []
    for name in sorted(set(council.adaptors) | set(council.broken)):
        adaptor = council.adaptors.get(name)
        kind = adaptor.type_name if adaptor is not None else council.config.adaptors[name].type
        state = council.not_ready.get(name)
        if name in council.broken:
            health = _tag("not loaded", "red") + f"<br>{e(council.broken[name])}"
        elif state is not None:
            health = _tag(state.status, "red" if state.status == "retrying" else "yellow")
            if state.reason or state.last_error:
                health += f"<br>{e(state.reason or state.last_error or '')}"
            health += f'<br><span class="muted">{state.attempts} attempt(s)</span>'
        else:
            result = rt.prober.result(council.id, name)
            if result is None or result.status == "unknown":
                health = _tag("not probed yet", "grey")
            elif result.status == "pass":
                health = _tag("up", "green") + f' <span class="muted">{_ago(result.age())}</span>'
            else:
                health = (
                    _tag("down", "red") + f' {e(result.output or "")} <span class="muted">'
                    f"checked {_ago(result.age())}, last up {_ago(result.success_age())}</span>"
                )
        breakers = council.breakers.get(name, {})
        circuit = (
            ", ".join(f"{e(cap)}: {e(b.state)}" for cap, b in sorted(breakers.items()))
            or "all closed"
        )
        rows.append(
            [
                f"<strong>{e(name)}</strong>",
                e(kind),
                health,
                circuit,
                "<br>".join(calls.get(name, [])) or '<span class="muted">no calls recorded</span>',
            ]
        )
    return _table(
        "Adaptors", ["Adaptor", "Type", "Health", "Circuits", "Calls"], rows, "No adaptors."
    )


def _routes_section(council: Any, report: dict[str, Any]) -> str:
    from gateway.config import CAPABILITIES

    rows = []
    caps = report.get("capabilities") or {}
    for cap in CAPABILITIES:
        route = getattr(council.config.routes, cap)
        if route is None:
            continue
        rules = "<br>".join(
            e(
                f"{r.use} for "
                + "; ".join(
                    f"{k} {v}"
                    for k, v in r.model_dump(exclude_none=True, mode="json").items()
                    if k != "use"
                )
            )
            for r in route.rules
        )
        shadow = "-"
        if route.shadow:
            sh = (caps.get(cap) or {}).get("shadow")
            if sh and sh.get("compared"):
                pct = 100 * sh["agreed"] / sh["compared"]
                shadow = f"{e(route.shadow)}: {pct:.1f}% agree ({sh['compared']} compared)"
            else:
                shadow = f"{e(route.shadow)}: nothing compared yet"
        rows.append([e(cap), f"<strong>{e(route.default)}</strong>", rules or "-", shadow])
    return _table("Routes", ["Capability", "Default", "Rules", "Shadow"], rows, "No routes.")


async def _coverage_section(rt: Runtime, council: Any) -> str:
    async with rt.database.session() as s:
        used = dict(
            (
                await s.execute(
                    select(Repair.sor_code, func.count())
                    .where(Repair.council == council.id, Repair.sor_code.is_not(None))
                    .group_by(Repair.sor_code)
                )
            ).all()
        )
    table_codes = {m.code for m in council.table}
    booked = {str(c).strip().upper(): n for c, n in used.items() if c}
    missing = sorted(c for c in booked if c not in table_codes)
    unused = sorted(table_codes - set(booked))
    share = (len(table_codes) - len(unused)) / len(table_codes) * 100 if table_codes else 0
    out = (
        f"<p>{len(table_codes)} codes in the table; {len(table_codes) - len(unused)} booked at "
        f"least once ({share:.0f}%).</p>"
    )
    if missing:
        out += (
            '<h3 class="h-s">Booked but not in the table</h3><ul class="list">'
            + "".join(f"<li><code>{e(c)}</code> ({booked[c]} repairs)</li>" for c in missing)
            + "</ul>"
        )
    out += (
        '<details class="details"><summary>Codes never booked '
        f"({len(unused)})</summary><p>"
        + (", ".join(f"<code>{e(c)}</code>" for c in unused) or "none")
        + "</p></details>"
    )
    return out


async def _outbox_section(rt: Runtime, council: Any, csrf: str) -> str:
    async with rt.database.session() as s:
        counts = (
            await s.execute(
                select(OutboxItem.state, OutboxItem.attempts > 0, func.count())
                .where(OutboxItem.council == council.id)
                .group_by(OutboxItem.state, OutboxItem.attempts > 0)
            )
        ).all()
    by: Counter[str] = Counter()
    for state, tried, n in counts:
        by["retrying" if state == "pending" and tried else state] += n
    summary = " ".join(
        f'<li><span class="count">{by.get(s, 0)}</span> {s}</li>'
        for s in ("pending", "retrying", "dead", "done", "dropped")
    )
    out = f'<ul class="counts">{summary}</ul>'
    rows = []
    for state in ("dead", "retrying"):
        for i in await list_items(rt.database, state, 50, council=council.id):
            actions = ""
            if i.state == "dead":
                actions = "".join(
                    f'<form method="post" action="/status/{e(council.id)}/outbox/{i.id}/{a}" '
                    f'class="inline" data-item="{i.id}" data-action="{a}">'
                    f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                    f'<button type="submit" class="button {cls}" '
                    f'aria-label="{label} item {i.id}">{label}</button></form>'
                    for a, label, cls in (
                        ("replay", "Replay", "button-small"),
                        ("drop", "Drop", "button-small button-warning"),
                    )
                )
            error = (i.last_error or "").split(":", 1)[0]
            rows.append(
                [
                    str(i.id),
                    e(i.kind),
                    f"<code>{e(str(i.payload.get('reference') or '-'))}</code>",
                    _tag(state, "red" if state == "dead" else "yellow"),
                    str(i.attempts),
                    e(error or "-"),
                    actions or "-",
                ]
            )
    out += _table(
        "Outbox items needing attention",
        ["Id", "Kind", "Reference", "State", "Attempts", "Last error", "Actions"],
        rows,
        "Nothing dead or retrying.",
    )
    return out


async def _errors_section(rt: Runtime, council: Any, report: dict[str, Any]) -> str:
    from gateway.status.errors import counts_for

    rows = [[e(str(code)), str(n)] for code, n in counts_for(council.id)]
    async with rt.database.session() as s:
        outbox = (
            await s.execute(
                select(OutboxItem.last_error)
                .where(OutboxItem.council == council.id, OutboxItem.last_error.is_not(None))
                .order_by(OutboxItem.id.desc())
                .limit(200)
            )
        ).scalars()
        kinds = Counter((x or "").split(":", 1)[0] for x in outbox)
    rows += [[f"outbox: {e(k)}", str(n)] for k, n in kinds.most_common(10)]
    return _table(
        "Recent errors",
        ["Error", "Count"],
        rows,
        "No errors answered since this process started, and none in the outbox.",
    )


async def _keys_section(rt: Runtime, council: Any) -> str:
    rows = []
    for k in await rt.keys.list():
        if council.id not in k.councils and "*" not in k.councils:
            continue
        state = key_state(k)
        kind = {"active": "green", "expiring": "yellow"}.get(state, "grey")
        rows.append(
            [
                f"<code>{e(k.key_id)}</code>",
                e(k.name),
                e(k.role),
                _tag(state, kind),
                _when(k.expires_at),
                _when(k.last_used_at),
                f"<code>{e(k.replaces)}</code>" if k.replaces else "-",
            ]
        )
    return _table(
        "API keys",
        ["Id", "Name", "Role", "State", "Expires", "Last used", "Replaces"],
        rows,
        "No keys for this council.",
    )


async def _audit_section(rt: Runtime, council: Any) -> str:
    async with rt.database.session() as s:
        events = list(
            (
                await s.execute(
                    select(AuditEvent)
                    .where(AuditEvent.council == council.id)
                    .order_by(AuditEvent.id.desc())
                    .limit(15)
                )
            ).scalars()
        )
    rows = [
        [
            _when(ev.at),
            e(ev.action),
            f"<code>{e(ev.key_id or (ev.detail or {}).get('via') or '-')}</code>",
            e(ev.reference or "-"),
            e(ev.outcome),
        ]
        for ev in events
    ]
    return _table("Audit", ["When", "Action", "Key", "Reference", "Outcome"], rows, "None yet.")


@router.get("/{council}")
async def council_page(request: Request, council: str, done: str | None = None) -> Response:
    rt: Runtime = request.app.state.runtime
    row = await _admin(request)
    if row is None:
        return _to_login(f"/status/{council}")
    c = rt.councils.get(council)
    if c is None or not _may_see(row, council):
        body = "<h1>Page not found</h1><p>No council of that name for this key.</p>"
        return _html(_page("Not found", body, signed_in=row), 404)
    await rt.flush_stats()
    from gateway.report import migration_report

    report = await migration_report(rt.database, c.id)
    csrf = _csrf(rt, request.cookies.get(COOKIE, ""))
    sections = await asyncio.gather(
        _adaptors_section(rt, c, report),
        _coverage_section(rt, c),
        _outbox_section(rt, c, csrf),
        _errors_section(rt, c, report),
        _keys_section(rt, c),
        _audit_section(rt, c),
    )
    adaptors, coverage, outbox, errors, keys, audit_html = sections
    flash = ""
    if done:
        flash = (
            '<div class="banner" role="status"><p>'
            + e(
                {
                    "replayed": "The item was queued again.",
                    "dropped": "The item was dropped.",
                    "not-dead": "That item is no longer dead: nothing was changed.",
                }.get(done, "Done.")
            )
            + "</p></div>"
        )
    body = f"""<a href="/status" class="back">All councils</a>
{flash}<h1>{e(c.config.name)} <span class="muted">({e(c.id)})</span></h1>
<nav aria-label="On this page"><ul class="contents">
<li><a href="#adaptors">Adaptors</a></li><li><a href="#routes">Routes</a></li>
<li><a href="#coverage">SoR coverage</a></li><li><a href="#outbox">Outbox</a></li>
<li><a href="#errors">Errors</a></li><li><a href="#keys">Keys</a></li>
<li><a href="#audit">Audit</a></li></ul></nav>
<section aria-labelledby="adaptors"><h2 id="adaptors">Adaptors</h2>{adaptors}</section>
<section aria-labelledby="routes"><h2 id="routes">Routes</h2>{_routes_section(c, report)}</section>
<section aria-labelledby="coverage"><h2 id="coverage">SoR mapping coverage</h2>{coverage}</section>
<section aria-labelledby="outbox"><h2 id="outbox">Outbox</h2>{outbox}</section>
<section aria-labelledby="errors"><h2 id="errors">Recent errors by code</h2>{errors}</section>
<section aria-labelledby="keys"><h2 id="keys">API keys</h2>{keys}
<p class="hint">Rotate a key with <code>repairs-gateway keys rotate KEY_ID</code>.</p></section>
<section aria-labelledby="audit"><h2 id="audit">Recent actions</h2>{audit_html}</section>"""
    return _html(_page(c.config.name, body, signed_in=row, csrf=csrf))


@router.post("/{council}/outbox/{item_id}/{action}")
async def outbox_action(request: Request, council: str, item_id: int, action: str) -> Response:
    rt: Runtime = request.app.state.runtime
    row = await _admin(request)
    if row is None:
        return _to_login(f"/status/{council}")
    form = await _form(request)
    cookie = request.cookies.get(COOKIE, "")
    if not hmac.compare_digest(str(form.get("csrf") or ""), _csrf(rt, cookie)):
        return _html(_page("Refused", "<h1>Refused</h1><p>The form had expired.</p>"), 403)
    if council not in rt.councils or not _may_see(row, council) or action not in ("replay", "drop"):
        return _html(_page("Not found", "<h1>Page not found</h1>", signed_in=row), 404)
    if action == "replay":
        count = await replay(rt.database, [item_id], council=council)
        rt.worker.wake()
    else:
        count = await drop(rt.database, [item_id], council=council)
    await audit.record(
        rt.database,
        f"outbox.{action}",
        key_id=row.key_id,
        council=council,
        reference=str(item_id),
        outcome="ok" if count else "not-dead",
        via="status",
    )
    done = ("replayed" if action == "replay" else "dropped") if count else "not-dead"
    return RedirectResponse(f"/status/{quote(council)}?done={done}#outbox", status_code=303)

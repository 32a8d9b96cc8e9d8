"""The status page for council IT: ``/status`` (server-rendered HTML, no assets from the
internet, plain GOV.UK-like styling, accessible).

Behind an admin key with a login form: the key is checked once and a signed session cookie
(HttpOnly, SameSite=Strict, Path=/status, 8 hours) carries only its id; every page looks the
key up again, so a revoked or expired key ends the session. Forms carry a CSRF token tied to
the session. Per council: each adaptor with its live probe result, start state, breakers and
call statistics; the routes (which adaptor serves what, shadow agreement); SoR mapping
coverage (codes booked that the table lacks, codes never used); the outbox (pending, retrying,
dead, with replay and drop, each audited); recent errors by code; the keys (no secrets);
recent audit events.
"""

from gateway.status.pages import router

__all__ = ["router"]

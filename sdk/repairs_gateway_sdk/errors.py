"""The gateway's error taxonomy. Adaptors raise these; the API renders them as problem+json."""

from __future__ import annotations


class GatewayError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(GatewayError):
    status, slug, title = 404, "not-found", "Not found"


class InvalidInput(GatewayError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class SlotUnavailable(GatewayError):
    status, slug, title = 409, "slot-unavailable", "Slot no longer available"


class Conflict(GatewayError):
    status, slug, title = 409, "conflict", "Conflict"


class BackendUnavailable(GatewayError):
    """The backend did not answer (outage, timeout, 5xx). Safe for the caller to retry later."""

    status, slug, title = 503, "backend-unavailable", "Backend unavailable"

    def __init__(self, detail: str, *, retry_after: int = 30, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after = retry_after


class NotAttempted(BackendUnavailable):
    """The backend was not called at all (its circuit is open, or the request had no time
    left): nothing can exist at the vendor because of this call."""


class BackendRejected(GatewayError):
    """The backend answered and refused the request."""

    status, slug, title = 502, "backend-rejected", "Backend rejected the request"


class BackendCannotAccept(BackendRejected):
    """A request the backend can never accept (it cannot be serialised for the vendor's
    protocol, or fails the vendor's own validation): the caller's input, not an outage. It
    never counts against a circuit breaker and is never retried (an outbox item goes straight
    to dead with this reason)."""

    status, slug, title = 422, "backend-cannot-accept", "The council's system cannot accept this"


class BackendAuthFailed(GatewayError):
    """The gateway's own credentials for a backend were refused: a configuration problem."""

    status, slug, title = 502, "backend-auth-failed", "Backend refused the gateway's credentials"


class Unauthorized(GatewayError):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(GatewayError):
    status, slug, title = 403, "forbidden", "Not allowed"


class RateLimited(GatewayError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

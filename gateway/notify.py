"""Resident notifications through GOV.UK Notify (notifications-python-client), delivered from
the outbox after the booking is committed: a Notify outage never fails or delays a booking.

Council YAML:

    notifications:
      api_key: ${NOTIFY_API_KEY}
      sms_templates: {booked: <template id>, rescheduled: <id>, cancelled: <id>}
      email_templates: {booked: <template id>}

Templates receive ``reference``, ``date`` (e.g. "Thursday 26 November"), ``time``
("8am to 12pm"), ``status``. Delivery is at least once: Notify has no idempotency key, so a
crash between Notify's answer and our commit can repeat one message (see docs/decisions).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

import requests
import structlog
from notifications_python_client.errors import HTTPError as NotifyHTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.errors import BackendRejected, BackendUnavailable
from gateway.timeutil import london

log = structlog.get_logger("gateway.notify")
Event = Literal["booked", "rescheduled", "cancelled", "awaiting_appointment"]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr
    base_url: str = "https://api.notifications.service.gov.uk"
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    sms_templates: dict[Event, str] = Field(default_factory=dict)
    email_templates: dict[Event, str] = Field(default_factory=dict)


def _clock(dt: datetime) -> str:
    t = london(dt)
    text = t.strftime("%I:%M%p").lstrip("0").lower().replace(":00", "")
    return text


def personalisation(
    reference: str, status: str, start: datetime | None, end: datetime | None
) -> dict[str, str]:
    values = {"reference": reference, "status": status.replace("_", " "), "date": "", "time": ""}
    if start and end:
        s = london(start)
        values["date"] = f"{s:%A} {s.day} {s:%B}"
        values["time"] = f"{_clock(start)} to {_clock(end)}"
    return values


class Notifier:
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self._client = NotificationsAPIClient(
            config.api_key.get_secret_value(),
            base_url=config.base_url,
            timeout=config.timeout_seconds,
        )

    def wants(self, event: str) -> bool:
        return event in self.config.sms_templates or event in self.config.email_templates

    async def send(self, event: str, contact: dict[str, Any], values: dict[str, str]) -> int:
        """Send what the council has templates for; returns the number of messages sent."""
        sent = 0
        sms = self.config.sms_templates.get(event)  # type: ignore[call-overload]
        email = self.config.email_templates.get(event)  # type: ignore[call-overload]
        if sms and contact.get("phone"):
            await self._call(
                self._client.send_sms_notification,
                phone_number=contact["phone"],
                template_id=sms,
                personalisation=values,
                reference=values["reference"],
            )
            sent += 1
        if email and contact.get("email"):
            await self._call(
                self._client.send_email_notification,
                email_address=contact["email"],
                template_id=email,
                personalisation=values,
                reference=values["reference"],
            )
            sent += 1
        return sent

    @staticmethod
    async def _call(fn: Any, **kwargs: Any) -> None:
        try:
            await asyncio.to_thread(fn, **kwargs)
        except NotifyHTTPError as exc:
            status = getattr(exc, "status_code", 500) or 500
            if status in (429,) or status >= 500:
                raise BackendUnavailable(f"GOV.UK Notify answered {status}") from None
            raise BackendRejected(f"GOV.UK Notify refused the message ({status})") from None
        except requests.RequestException as exc:
            raise BackendUnavailable(f"GOV.UK Notify unreachable ({type(exc).__name__})") from None

"""Resident notifications through GOV.UK Notify (notifications-python-client), delivered from
the outbox after the booking is committed: a Notify outage never fails or delays a booking.

Council YAML:

    notifications:
      api_key: ${NOTIFY_API_KEY}
      sms_templates: {booked: <template id>, rescheduled: <id>, cancelled: <id>, reminder: <id>}
      email_templates: {booked: <template id>, reminder: <id>}
      sms_sender_id: <Notify text message sender id>     # optional: the council's own sender
      email_reply_to_id: <Notify reply-to address id>    # optional
      welsh_sms_templates: {booked: <id>}                # optional: for residents who chose Welsh
      welsh_email_templates: {booked: <id>}
      default_language: en                               # or cy: when the resident chose none
      reminder_at: "10:00"                               # London time, the day before
      callback_bearer_token: ${NOTIFY_CALLBACK_TOKEN}    # delivery receipts (see below)

Templates receive ``reference``, ``date`` ("Thursday 3 December"), ``time`` ("8am to
midday"), ``appointment`` ("Thursday 3 December, 8am to midday") and ``status``, built from the
event's own snapshot (gateway/messages.py). The reminder is an outbox item due at
``reminder_at`` the day before the appointment; a move or cancel takes it away with the booking
(gateway/notifications.py). Delivery receipts: set Notify's callback URL to
``/v1/councils/{council}/notifications/receipts`` with the same bearer token. Delivery is at
least once per message: Notify has no idempotency key, so a crash between Notify's answer and
our commit can repeat one message (see docs/decisions).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, time
from typing import Any, Literal

import requests
import structlog
from notifications_python_client.errors import HTTPError as NotifyHTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from repairs_gateway_sdk.errors import BackendCannotAccept, BackendRejected, BackendUnavailable

log = structlog.get_logger("gateway.notify")
Event = Literal["booked", "rescheduled", "cancelled", "awaiting_appointment", "reminder"]
Channel = Literal["sms", "email"]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr
    base_url: str = "https://api.notifications.service.gov.uk"
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    sms_templates: dict[Event, str] = Field(default_factory=dict)
    email_templates: dict[Event, str] = Field(default_factory=dict)
    sms_sender_id: str | None = Field(None, description="Notify text message sender id")
    email_reply_to_id: str | None = Field(None, description="Notify reply-to address id")
    welsh_sms_templates: dict[Event, str] = Field(default_factory=dict)
    welsh_email_templates: dict[Event, str] = Field(default_factory=dict)
    default_language: Literal["en", "cy"] = "en"
    reminder_at: time = Field(time(10, 0), description="London time, the day before")
    callback_bearer_token: SecretStr | None = Field(
        None, description="the bearer token Notify sends with delivery receipts"
    )

    def template(self, channel: Channel, event: str, language: str) -> tuple[str | None, str]:
        """The template for ``event`` on ``channel`` and the language it is in: the Welsh one
        when the resident reads Welsh and the council has it, else the English one."""
        if language == "cy":
            welsh = self.welsh_sms_templates if channel == "sms" else self.welsh_email_templates
            if event in welsh:
                return welsh[event], "cy"  # type: ignore[index]
        english = self.sms_templates if channel == "sms" else self.email_templates
        return english.get(event), "en"  # type: ignore[call-overload]


def personalisation(
    reference: str, status: str, start: datetime | None, end: datetime | None
) -> dict[str, str]:
    """The template values for a repair in this state (GOV.UK style; gateway/messages.py)."""
    from gateway.messages import personalisation as build
    from gateway.messages import snapshot

    return build(reference, status, snapshot(status, start, end))


class Notifier:
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self._client = NotificationsAPIClient(
            config.api_key.get_secret_value(),
            base_url=config.base_url,
            timeout=config.timeout_seconds,
        )

    def wants(self, event: str) -> bool:
        c = self.config
        return any(
            event in t
            for t in (
                c.sms_templates,
                c.email_templates,
                c.welsh_sms_templates,
                c.welsh_email_templates,
            )
        )

    async def send_one(
        self, channel: Channel, to: str, template_id: str, values: dict[str, str]
    ) -> str:
        """Send one message; returns Notify's notification id (for delivery receipts)."""
        if channel == "sms":
            answer = await self._call(
                self._client.send_sms_notification,
                phone_number=to,
                template_id=template_id,
                personalisation=values,
                reference=values["reference"],
                sms_sender_id=self.config.sms_sender_id,
            )
        else:
            answer = await self._call(
                self._client.send_email_notification,
                email_address=to,
                template_id=template_id,
                personalisation=values,
                reference=values["reference"],
                email_reply_to_id=self.config.email_reply_to_id,
            )
        return str((answer or {}).get("id") or "")

    async def send(self, event: str, contact: dict[str, Any], values: dict[str, str]) -> int:
        """Send what the council has English templates for; returns the number sent. (The
        booking flow sends per channel with records: gateway/notifications.py.)"""
        sent = 0
        for channel, field in (("sms", "phone"), ("email", "email")):
            template, _ = self.config.template(channel, event, "en")  # type: ignore[arg-type]
            if template and contact.get(field):
                await self.send_one(channel, contact[field], template, values)  # type: ignore[arg-type]
                sent += 1
        return sent

    @staticmethod
    async def _call(fn: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except NotifyHTTPError as exc:
            status = getattr(exc, "status_code", 500) or 500
            if status in (429,) or status >= 500:
                raise BackendUnavailable(f"GOV.UK Notify answered {status}") from None
            reason = refusal_reason(exc)
            if status == 400:  # the message itself is wrong: no retry can succeed
                raise BackendCannotAccept(
                    f"GOV.UK Notify refused the message (400): {reason}"
                ) from None
            raise BackendRejected(
                f"GOV.UK Notify refused the message ({status}): {reason}"
            ) from None
        except requests.RequestException as exc:
            raise BackendUnavailable(f"GOV.UK Notify unreachable ({type(exc).__name__})") from None


_PERSONAL = re.compile(r"[^\s@]+@[^\s@]+|\+?\d[\d ()-]{5,}\d")


def refusal_reason(exc: Any) -> str:
    """Notify's own words for a refusal ("BadRequestError: phone_number Not a UK mobile
    number"), without anything that looks like a phone number or an email address, short."""
    message = getattr(exc, "message", None)
    parts: list[str] = []
    if isinstance(message, list):
        for e in message[:3]:
            if isinstance(e, dict):
                parts.append(f"{e.get('error', '')}: {e.get('message', '')}".strip(": "))
    elif message:
        parts.append(str(message))
    text = "; ".join(parts) or "no reason given"
    return _PERSONAL.sub("[redacted]", text)[:300]

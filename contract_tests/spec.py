"""Moved to ``repairs_gateway_sdk.testing.spec`` (the SDK's testing extra); kept for code that
imports it from here."""

from repairs_gateway_sdk.testing.spec import *  # noqa: F403

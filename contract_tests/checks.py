"""Moved to ``repairs_gateway_sdk.testing.checks`` (the SDK's testing extra); kept for code that
imports it from here."""

from repairs_gateway_sdk.testing.checks import *  # noqa: F403

"""Moved to ``repairs_gateway_sdk.testing.structure`` (the SDK's testing extra); kept for code that
imports it from here."""

from repairs_gateway_sdk.testing.structure import *  # noqa: F403

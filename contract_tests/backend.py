"""Moved to ``repairs_gateway_sdk.testing.backend`` (the SDK's testing extra); kept for code that
imports it from here."""

from repairs_gateway_sdk.testing.backend import *  # noqa: F403

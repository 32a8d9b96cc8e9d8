"""Moved to the adaptor SDK: ``repairs_gateway_sdk.simkit``. Kept only so code
written against the old path keeps working; import from the SDK."""

from repairs_gateway_sdk.simkit import *  # noqa: F403

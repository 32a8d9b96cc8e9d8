"""Moved to the adaptor SDK: ``repairs_gateway_sdk.references``. Kept only so code
written against the old path keeps working; import from the SDK."""

from repairs_gateway_sdk.references import *  # noqa: F403

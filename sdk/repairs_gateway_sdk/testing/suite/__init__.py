"""The adaptor conformance suite (collected by repairs_gateway_sdk.testing.plugin)."""

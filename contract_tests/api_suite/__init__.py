"""The standard HTTP API conformance suite (collected by contract_tests.plugin)."""

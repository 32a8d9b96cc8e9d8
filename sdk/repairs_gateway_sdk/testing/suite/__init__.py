"""The adaptor conformance suite (collected by contract_tests.plugin)."""

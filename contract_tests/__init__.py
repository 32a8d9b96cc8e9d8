"""Conformance suites for the repairs gateway.

- The adaptor suite (``contract_tests/adaptor_suite``): structural checks for any adaptor type
  and behavioural checks per capability (AddressSource, Scheduler, WorksOrderSink), run
  against a real backend or its simulator: ``pytest -p contract_tests.plugin --adaptor TYPE
  --adaptor-config FILE``.
- The HTTP API suite (``contract_tests/api_suite``): checks any implementation of the standard
  API at a base URL: ``pytest -p contract_tests.plugin --api-base-url URL --api-key KEY
  --api-council C [--write]``.

See README.md beside this file.
"""

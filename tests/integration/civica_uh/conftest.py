"""The UH simulator fixtures of the adaptor's own tests (adaptors/civica_uh/tests), for the
tests of the adaptor through the gateway's API."""

from adaptors.civica_uh.tests.conftest import sim, simulator  # noqa: F401

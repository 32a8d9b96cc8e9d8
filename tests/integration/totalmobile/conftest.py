"""The Totalmobile simulator fixtures of the adaptor's own tests (adaptors/totalmobile/tests),
for the tests of the adaptor through the gateway's API."""

from adaptors.totalmobile.tests.conftest import sim, sim_url  # noqa: F401

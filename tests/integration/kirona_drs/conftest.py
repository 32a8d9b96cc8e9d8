"""The DRS simulator fixtures of the adaptor's own tests (adaptors/kirona_drs/tests), for the
tests of the adaptor through the gateway's API and its guard."""

from adaptors.kirona_drs.tests.conftest import make_adaptor, sim, simulator  # noqa: F401

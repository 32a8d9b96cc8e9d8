"""A Kirona DRS simulator speaking SOAP 1.1 on 127.0.0.1 (see README.md in the adaptor folder).

Run it with ``python -m adaptors.kirona_drs.simulator --port 8089``.
"""

from adaptors.kirona_drs.simulator.app import Simulator

__all__ = ["Simulator"]

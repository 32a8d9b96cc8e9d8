"""Totalmobile simulator: ``python -m adaptors.totalmobile.simulator --port 8770``."""

from adaptors.totalmobile.simulator.app import build, create_app
from adaptors.totalmobile.simulator.state import SimState

__all__ = ["SimState", "build", "create_app"]

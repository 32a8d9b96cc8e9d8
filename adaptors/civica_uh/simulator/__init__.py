"""A runnable Civica UH simulator: ``python -m adaptors.civica_uh.simulator --port 8095``."""

from adaptors.civica_uh.simulator.app import create_app
from adaptors.civica_uh.simulator.service import UHState

__all__ = ["UHState", "create_app"]

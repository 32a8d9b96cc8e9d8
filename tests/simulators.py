"""Simulator processes for the gateway's own tests: the helpers are the SDK's
(``repairs_gateway_sdk.testing.simulators``, what each adaptor's own tests use); here they run
from the checkout's root, so ``python -m adaptors.<name>.simulator`` is found whatever the
test's working directory."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from repairs_gateway_sdk.testing import simulators
from repairs_gateway_sdk.testing.simulators import free_port, wait_until_ready

__all__ = ["ROOT", "free_port", "running_simulator", "wait_until_ready"]

ROOT = Path(__file__).resolve().parents[1]


def running_simulator(module: str, *args: str, **options: Any) -> AbstractContextManager[str]:
    """``repairs_gateway_sdk.testing.simulators.running_simulator``, from the checkout's root."""
    options.setdefault("cwd", ROOT)
    return simulators.running_simulator(module, *args, **options)

"""Hooks of the adaptor kit's pytest plugin, for a host that runs it (the gateway)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def repairs_gateway_contract_store(namespace: str, directory: Path) -> Any:
    """A ``repairs_gateway_sdk.store.Store`` for a stateful adaptor (``store_namespace``),
    kept in ``directory``. The first implementation to answer wins; an object with an async
    ``close()`` is closed at the end of the run. The gateway answers with its own store (its
    database, migrated); without it the kit uses ``repairs_gateway_sdk.testing.store``."""

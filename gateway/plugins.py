"""Adaptor discovery through the ``repairs_gateway.adaptors`` entry-point group.

In-tree adaptors register the same way as third-party ones. A plugin that fails to import is
recorded with its error (shown by ``check`` and ``/health``) and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from repairs_gateway_sdk.adaptor import Adaptor

GROUP = "repairs_gateway.adaptors"


@dataclass
class PluginRegistry:
    types: dict[str, type[Adaptor]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


_registry: PluginRegistry | None = None


def discover(refresh: bool = False) -> PluginRegistry:
    global _registry
    if _registry is not None and not refresh:
        return _registry
    registry = PluginRegistry()
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            registry.errors[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not (isinstance(cls, type) and issubclass(cls, Adaptor)):
            registry.errors[ep.name] = f"{ep.value} is not an Adaptor subclass"
            continue
        registry.types[ep.name] = cls
    _registry = registry
    return registry


def register(name: str, cls: type[Adaptor]) -> None:
    """Register an adaptor class directly (tests, embedding)."""
    discover().types[name] = cls

"""Sandbox adaptor: fixed data for front-end teams, never a council's systems."""

from adaptors.sandbox.adaptor import SandboxAdaptor, SandboxConfig

__all__ = ["SandboxAdaptor", "SandboxConfig"]

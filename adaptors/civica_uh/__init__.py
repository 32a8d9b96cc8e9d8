"""Civica Universal Housing adaptor (HMS over SOAP): addresses and works orders."""

from adaptors.civica_uh.adaptor import CivicaUHAdaptor

__all__ = ["CivicaUHAdaptor"]

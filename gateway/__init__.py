"""The repairs gateway: one standard repairs API in front of councils' legacy systems."""

__version__ = "0.1.0"

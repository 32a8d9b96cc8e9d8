"""The standard HTTP API (v1)."""

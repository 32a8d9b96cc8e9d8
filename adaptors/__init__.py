"""Adaptor plugins. Each sub-package is one backend; the seam they implement is the SDK
(``sdk/repairs_gateway_sdk/adaptor.py``)."""

"""Adaptor plugins. Each sub-package is one backend; see ``adaptors/base.py`` for the seam."""

"""The Schedule of Rates mapping engine: a council's SoR code -> trade, size, duration, priority."""

from mappings.engine import LineError, SorMapping, SorTable, load_table

__all__ = ["LineError", "SorMapping", "SorTable", "load_table"]

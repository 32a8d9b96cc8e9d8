"""CSV fallback adaptor: for councils whose only export is a spreadsheet."""

from adaptors.csv_fallback.adaptor import CsvFallbackAdaptor
from adaptors.csv_fallback.config import CsvFallbackConfig

__all__ = ["CsvFallbackAdaptor", "CsvFallbackConfig"]

"""Files that council staff open in a spreadsheet.

A cell that begins with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return, which some
spreadsheets skip before reading a formula) is a formula to Excel and LibreOffice: a resident
who types ``=HYPERLINK(...)`` as a description would have it run on a council PC (CSV/formula
injection, OWASP). Such cells are written with a leading apostrophe, which the spreadsheet
shows as text; control characters are replaced by spaces. A phone number ``+44...`` therefore
reads ``'+44...`` in the raw file and ``+44...`` in the spreadsheet.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def spreadsheet_safe(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = _CONTROL.sub(" ", value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value

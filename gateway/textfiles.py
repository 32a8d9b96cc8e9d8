"""Reading the text files council IT give the gateway (council YAML, SoR tables, property
CSVs), whatever saved them: UTF-8 with or without a byte-order mark, UTF-16 (as Excel's
"Unicode text" saves), or Windows-1252 (Excel's "CSV" on a Windows PC in the UK: a "£" is
byte 0xA3). A file that is none of these is refused naming the file, line and byte, never
with a traceback.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

SNIFF_BYTES = 64 * 1024


class TextFileError(ValueError):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # utf-8 | utf-8-sig | utf-16 | windows-1252

    @property
    def note(self) -> str | None:
        """A word for council IT when the file is not plain UTF-8."""
        if self.encoding in ("utf-8", "utf-8-sig"):
            return None
        return f"read as {self.encoding.upper()} (saving it as UTF-8 is recommended)"


def _utf16_without_bom(head: bytes) -> str | None:
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.1:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.1:
        return "utf-16-be"
    return None


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes, path: Path | str = "<text>") -> Decoded:
    if data.startswith(codecs.BOM_UTF8):
        encodings = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    else:
        sniffed = _utf16_without_bom(data[:SNIFF_BYTES])
        encodings = [sniffed] if sniffed else ["utf-8", "windows-1252"]
    first_error: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise TextFileError(path, line, "contains NUL characters: is it a text file?")
        name = "utf-16" if enc.startswith("utf-16") else enc
        return Decoded(text, name)
    assert first_error is not None
    pos = first_error.start
    raise TextFileError(
        path,
        _line_at(data, pos),
        f"cannot be read as text (byte 0x{data[pos]:02X} at byte {pos + 1} is not UTF-8, "
        "UTF-16 or Windows-1252): save it as CSV UTF-8",
    )


def read_text(path: Path) -> Decoded:
    """The file's text and the encoding it was read in. OSError when it cannot be read;
    TextFileError when it is not text in a known encoding."""
    return decode(path.read_bytes(), path)


def detect_encoding(path: Path) -> str:
    """The encoding to open ``path`` with for streaming (large CSVs): decided from its first
    64 KiB (UTF-8 unless a BOM, UTF-16's zero bytes or a byte that is not UTF-8 says
    otherwise). Python's name for it."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sniffed = _utf16_without_bom(head)
    if sniffed:
        return sniffed
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the sniff's end
            return "windows-1252"
    return "utf-8"

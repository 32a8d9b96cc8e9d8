"""The HTTP server's one change to uvicorn: an answer's head and body leave in one write.

uvicorn (h11) writes a response's status line and headers as soon as the application sends
``http.response.start``, and its body when it sends ``http.response.body``: two ``send()``
calls, two TCP segments (uvicorn sets TCP_NODELAY), and a client that wakes for the head and
again for the body. On this project's loopback measurements that second wake-up cost a POST
0.2-4 ms (the sender is descheduled while the woken client reads the head).

``OneWriteH11Protocol`` is uvicorn's own H11 protocol with its transport wrapped: a write that
is a whole response head (``HTTP/1.1 ...`` up to its blank line) is held and sent with the
next write (the body, which an answer of known length sends in the same step), or on the
loop's next turn if none comes (a streamed answer's head is never held longer); a body over
64 KiB is written after its head rather than copied onto it. Everything else is uvicorn's,
unchanged; closing the connection sends what is held first (aborting drops it, as it drops
whatever else is buffered).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_HEAD = b"HTTP/1.1 "
_END = b"\r\n\r\n"
_JOIN_UP_TO = 64 * 1024  # bodies up to this size leave in the same write as their head


class _HeadWithBody:
    """An asyncio transport that holds a response head for the write after it."""

    __slots__ = ("_transport", "_held", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._loop = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) > _JOIN_UP_TO:  # a large body: not copied for one send's sake
                self._transport.write(held)
                self._transport.write(data)
            else:
                self._transport.write(held + bytes(data))
        elif isinstance(data, bytes) and data.startswith(_HEAD) and data.endswith(_END):
            self._held = data  # (uvicorn writes bytes; no slices copied per write)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class OneWriteH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; each answer's head goes out with its body (module notes)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self.transport = _HeadWithBody(self.transport, asyncio.get_running_loop())  # type: ignore[assignment]

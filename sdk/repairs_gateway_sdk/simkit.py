"""Shared helpers for the project's simulators (``adaptors/*/simulator``).

Not used by the adaptors themselves: only the simulators' ``__main__`` modules import this, for
their ``--state-file PATH`` option, which keeps a simulator's state across restarts (kill -9
included):

- ``SaveBeforeReply`` wraps the simulator's ASGI app and calls ``save()`` after a write request
  is handled but before its reply starts, so a reply the client has seen is never lost;
- ``write_pickle`` writes the snapshot atomically (``PATH.tmp`` then ``os.replace``), so a kill
  during a save leaves the previous file whole;
- ``read_pickle`` reads it back at start.

Each simulator decides what its snapshot holds, how to take it (under its own lock if it has
one) and how to restore it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITE_METHODS: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def write_pickle(path: Path, data: Any) -> None:
    """Pickle ``data`` to ``path`` atomically: write ``path.tmp``, then rename it over ``path``."""
    blob = pickle.dumps(data)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def read_pickle(path: Path) -> dict[str, Any] | None:
    """The dict ``write_pickle`` left at ``path``, or None if there is no file yet."""
    if not path.exists():
        return None
    data: dict[str, Any] = pickle.loads(path.read_bytes())  # noqa: S301 - our own file
    return data


class SaveBeforeReply:
    """ASGI middleware: after a write is handled, ``save()`` before the reply starts.

    A request whose method is in ``methods`` (default POST, PUT, PATCH, DELETE) is saved once,
    just before its ``http.response.start`` is sent; if the app sends no reply (it raised, or
    dropped the connection) the state is saved when it returns. Other requests, and non-HTTP
    scopes, pass straight through.
    """

    def __init__(
        self,
        app: ASGIApp,
        save: Callable[[], None],
        methods: Iterable[str] = WRITE_METHODS,
    ) -> None:
        self.app, self.save, self.methods = app, save, frozenset(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        saved = False

        async def send_after_save(message: Message) -> None:
            nonlocal saved
            if message["type"] == "http.response.start" and not saved:
                saved = True
                self.save()
            await send(message)

        try:
            await self.app(scope, receive, send_after_save)
        finally:
            if not saved:
                self.save()

"""Run the simulator: ``python -m adaptors.civica_uh.simulator --port 8095``.

``--state-file PATH`` keeps requests and works orders across restarts (kill -9 included): the
state is written (atomically) before any reply to a POST is sent, and read back at start.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptors.civica_uh.simulator.app import create_app
from adaptors.civica_uh.simulator.service import Faults, UHState


def save_state(state: UHState, path: Path) -> None:
    with state.lock:
        data = {
            "requests": state.requests,
            "orders": state.orders,
            "next_order": state.next_order,
            "next_request": state.next_request,
        }
        blob = pickle.dumps(data)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def load_state(state: UHState, path: Path) -> None:
    if not path.exists():
        return
    data: dict[str, Any] = pickle.loads(path.read_bytes())  # noqa: S301 - our own file
    state.requests.update(data["requests"])
    state.orders.update(data["orders"])
    state.next_order, state.next_request = data["next_order"], data["next_request"]


class SaveBeforeReply:
    """ASGI middleware: after a POST is handled, save the state before the reply starts."""

    def __init__(self, app: ASGIApp, state: UHState, path: Path) -> None:
        self.app, self.state, self.path = app, state, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        saved = False

        async def send_after_save(message: Message) -> None:
            nonlocal saved
            if message["type"] == "http.response.start" and not saved:
                saved = True
                save_state(self.state, self.path)
            await send(message)

        try:
            await self.app(scope, receive, send_after_save)
        finally:
            if not saved:
                save_state(self.state, self.path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Civica Universal Housing simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--username", default="gateway")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--state-file", type=Path, default=None, help="keep orders across restarts in this file"
    )
    args = parser.parse_args()
    state = UHState(
        username=args.username, password=args.password, faults=Faults(latency_ms=args.latency_ms)
    )
    app: ASGIApp = create_app(state)
    if args.state_file is not None:
        load_state(state, args.state_file)
        app = SaveBeforeReply(app, state, args.state_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""Run the Totalmobile simulator on loopback.

python -m adaptors.totalmobile.simulator --port 8770 [--latency-ms 20]

``--state-file PATH`` keeps jobs, visits and capacity use across restarts (kill -9 included):
the state is written (atomically) before any reply to a POST or DELETE is sent, and read back at
start. Tokens are not kept: a restarted identity server has forgotten them.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptors.totalmobile.simulator.app import build
from adaptors.totalmobile.simulator.state import SimState


def save_state(state: SimState, path: Path) -> None:
    data = {
        "jobs": state.jobs,
        "usage": state.usage,
        "deletions": state.deletions,
        "counters": state.counters,
        "visit_seq": state.visit_seq,
        "capacity": state.capacity,
        "default_capacity": state.default_capacity,
        "token_ttl_seconds": state.token_ttl_seconds,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(data))
    os.replace(tmp, path)


def load_state(state: SimState, path: Path) -> None:
    if not path.exists():
        return
    data: dict[str, Any] = pickle.loads(path.read_bytes())  # noqa: S301 - our own file
    for name, value in data.items():
        setattr(state, name, value)


class SaveBeforeReply:
    """ASGI middleware: after a write is handled, save the state before the reply starts."""

    def __init__(self, app: ASGIApp, state: SimState, path: Path) -> None:
        self.app, self.state, self.path = app, state, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "DELETE"):
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
    p = argparse.ArgumentParser(description="Totalmobile (Optimise + SERVICE CONNECT) simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8770)
    p.add_argument("--client-id", default="repairs-gateway")
    p.add_argument("--client-secret", default="s3cret")
    p.add_argument(
        "--world",
        action="append",
        default=None,
        help="world id served (repeatable; default housing-repairs)",
    )
    p.add_argument(
        "--capacity", type=int, default=2, help="places per work type, planning window and day"
    )
    p.add_argument("--token-ttl", type=int, default=3600, help="token lifetime in seconds")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--log-level", default="warning")
    p.add_argument(
        "--state-file", type=Path, default=None, help="keep jobs across restarts in this file"
    )
    args = p.parse_args()
    state = SimState(
        client_id=args.client_id,
        client_secret=args.client_secret,
        worlds=set(args.world or ["housing-repairs"]),
        token_ttl_seconds=args.token_ttl,
        default_capacity=args.capacity,
        latency_ms=args.latency_ms,
    )
    app = build(state)
    if args.state_file is not None:
        load_state(state, args.state_file)
        app = SaveBeforeReply(app, state, args.state_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()

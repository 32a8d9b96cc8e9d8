"""Run the simulator: ``python -m adaptors.civica_uh.simulator --port 8095``.

``--state-file PATH`` keeps requests and works orders across restarts (kill -9 included): the
state is written (atomically) before any reply to a POST is sent, and read back at start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from adaptors.civica_uh.simulator.app import create_app
from adaptors.civica_uh.simulator.service import Faults, UHState
from repairs_gateway_sdk.simkit import SaveBeforeReply, read_pickle, write_pickle

# The state a restart keeps: UHState attributes, pickled under the state's lock.
KEPT = ("requests", "orders", "next_order", "next_request")


def save_state(state: UHState, path: Path) -> None:
    with state.lock:
        write_pickle(path, {name: getattr(state, name) for name in KEPT})


def load_state(state: UHState, path: Path) -> None:
    data = read_pickle(path)
    if data is None:
        return
    state.requests.update(data["requests"])
    state.orders.update(data["orders"])
    state.next_order, state.next_request = data["next_order"], data["next_request"]


def keep_state(app: ASGIApp, state: UHState, path: Path) -> ASGIApp:
    """``--state-file``: restore ``state`` from ``path``, then save it before each POST's reply."""
    load_state(state, path)
    return SaveBeforeReply(app, lambda: save_state(state, path), methods=("POST",))


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
        app = keep_state(app, state, args.state_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

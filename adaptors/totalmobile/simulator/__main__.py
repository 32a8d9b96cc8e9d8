"""Run the Totalmobile simulator on loopback.

python -m adaptors.totalmobile.simulator --port 8770 [--latency-ms 20]

``--state-file PATH`` keeps jobs, visits and capacity use across restarts (kill -9 included):
the state is written (atomically) before any reply to a POST or DELETE is sent, and read back at
start. Tokens are not kept: a restarted identity server has forgotten them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from adaptors.totalmobile.simulator.app import build
from adaptors.totalmobile.simulator.state import SimState
from repairs_gateway_sdk.simkit import SaveBeforeReply, read_pickle, write_pickle

# The state a restart keeps: SimState attributes (not tokens, nor the client's credentials).
KEPT = (
    "jobs",
    "usage",
    "deletions",
    "counters",
    "visit_seq",
    "capacity",
    "default_capacity",
    "token_ttl_seconds",
)


def save_state(state: SimState, path: Path) -> None:
    write_pickle(path, {name: getattr(state, name) for name in KEPT})


def load_state(state: SimState, path: Path) -> None:
    for name, value in (read_pickle(path) or {}).items():
        setattr(state, name, value)


def keep_state(app: ASGIApp, state: SimState, path: Path) -> ASGIApp:
    """``--state-file``: restore ``state`` from ``path``, then save it before each write's reply."""
    load_state(state, path)
    return SaveBeforeReply(app, lambda: save_state(state, path), methods=("POST", "DELETE"))


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
        app = keep_state(app, state, args.state_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()

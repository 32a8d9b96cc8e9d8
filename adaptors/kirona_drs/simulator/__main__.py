"""``python -m adaptors.kirona_drs.simulator --port N [--availability-latency 1,2]``.

``--state-file PATH`` keeps orders, bookings and diary usage across restarts (kill -9
included): the state is written (atomically) before any reply to a POST is sent, and read back
at start. Sessions are not kept: a restarted DRS has forgotten them, as the real one does.
"""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path
from typing import Any

import uvicorn

from adaptors.kirona_drs.simulator.app import Simulator
from repairs_gateway_sdk.simkit import SaveBeforeReply, read_pickle, write_pickle


def _latency(text: str) -> float | list[float]:
    parts = [float(p) for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def save_state(sim: Simulator, path: Path) -> None:
    st = sim.state
    match = re.search(r"\d+", repr(st._ids))
    write_pickle(
        path,
        {
            "orders": st.orders,
            "usage": st.usage,
            "next_id": int(match.group(0)) if match else 1001,
            "clock": st.clock,
            "capacity": st.capacity,
            "working_days": st.working_days,
            "areas": st.areas,
        },
    )


def load_state(sim: Simulator, path: Path) -> None:
    data = read_pickle(path)
    if data is None:
        return
    st = sim.state
    st.orders, st.usage = data["orders"], data["usage"]
    st._ids = itertools.count(int(data["next_id"]))
    st.clock, st.capacity = data["clock"], data["capacity"]
    st.working_days, st.areas = tuple(data["working_days"]), dict(data["areas"])


def keep_state(sim: Simulator, path: Path) -> Any:
    """``--state-file``: restore ``sim`` from ``path``, then save it before each POST's reply."""
    load_state(sim, path)
    app: Any = sim  # Simulator types its scope as a dict, not Starlette's Scope
    return SaveBeforeReply(app, lambda: save_state(sim, path), methods=("POST",))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adaptors.kirona_drs.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--login", default="gateway")
    parser.add_argument("--password", default="drs-secret")
    parser.add_argument(
        "--availability-latency",
        default="0.05",
        help="seconds per checkAvailability call, or MIN,MAX (real DRS: 1,2+)",
    )
    parser.add_argument("--latency", default="0", help="seconds for every other call")
    parser.add_argument(
        "--capacity", type=int, default=None, help="operatives per trade (default: seeded)"
    )
    parser.add_argument(
        "--state-file", type=Path, default=None, help="keep orders across restarts in this file"
    )
    args = parser.parse_args(argv)
    sim = Simulator(
        latency={
            "checkAvailability": _latency(args.availability_latency),
            "*": _latency(args.latency),
        },
        login=args.login,
        password=args.password,
    )
    if args.capacity is not None:
        sim.state.capacity = args.capacity
    app: Any = sim
    if args.state_file is not None:
        app = keep_state(sim, args.state_file)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""``python -m adaptors.kirona_drs.simulator --port N [--availability-latency 1,2]``."""

from __future__ import annotations

import argparse

import uvicorn

from adaptors.kirona_drs.simulator.app import Simulator


def _latency(text: str) -> float | list[float]:
    parts = [float(p) for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


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
    args = parser.parse_args(argv)
    sim = Simulator(
        latency={
            "checkAvailability": _latency(args.availability_latency),
            "*": _latency(args.latency),
        },
        login=args.login,
        password=args.password,
    )
    uvicorn.run(sim, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

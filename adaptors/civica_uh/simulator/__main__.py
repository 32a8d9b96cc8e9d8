"""Run the simulator: ``python -m adaptors.civica_uh.simulator --port 8095``."""

from __future__ import annotations

import argparse

import uvicorn

from adaptors.civica_uh.simulator.app import create_app
from adaptors.civica_uh.simulator.service import Faults, UHState


def main() -> None:
    parser = argparse.ArgumentParser(description="Civica Universal Housing simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--username", default="gateway")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    state = UHState(
        username=args.username, password=args.password, faults=Faults(latency_ms=args.latency_ms)
    )
    uvicorn.run(
        create_app(state), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()

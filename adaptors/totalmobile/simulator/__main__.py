"""Run the Totalmobile simulator on loopback.

python -m adaptors.totalmobile.simulator --port 8770 [--latency-ms 20]
"""

from __future__ import annotations

import argparse

import uvicorn

from adaptors.totalmobile.simulator.app import build
from adaptors.totalmobile.simulator.state import SimState


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
    args = p.parse_args()
    state = SimState(
        client_id=args.client_id,
        client_secret=args.client_secret,
        worlds=set(args.world or ["housing-repairs"]),
        token_ttl_seconds=args.token_ttl,
        default_capacity=args.capacity,
        latency_ms=args.latency_ms,
    )
    uvicorn.run(
        build(state), host=args.host, port=args.port, log_level=args.log_level, access_log=False
    )


if __name__ == "__main__":
    main()

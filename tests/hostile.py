"""The hostile vendor server lives in the SDK's testing extra
(``repairs_gateway_sdk.testing.hostile``); this module keeps the command line the benchmark
uses (``python -m tests.hostile --port N --mode big [--drs-session] [--token]``), where
``--drs-session`` answers DRS's ``openSession`` properly so the hostile reply hits the next
call."""

from __future__ import annotations

import sys

from adaptors.kirona_drs.tests.test_hostile_replies import DRS_SESSION
from repairs_gateway_sdk.testing import hostile
from repairs_gateway_sdk.testing.hostile import *  # noqa: F403 - the names tests used from here

__all__ = ["DRS_SESSION", "main", *hostile.__all__]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    answers: dict[bytes, bytes] = {}
    if "--drs-session" in args:
        args.remove("--drs-session")
        answers[b"openSession"] = DRS_SESSION
    hostile.main(args, answers=answers)


if __name__ == "__main__":
    main()

"""Run a simulator (or any small HTTP server) as a real subprocess on a free loopback port,
for an adaptor's own tests.

Typically in a session-scoped fixture of the adaptor's ``tests/conftest.py``::

    from repairs_gateway_sdk.testing.simulators import running_simulator

    @pytest.fixture(scope="session")
    def simulator() -> Iterator[str]:
        with running_simulator("acme_diary.simulator", "--latency", "0") as base_url:
            yield base_url

The module must accept ``--port N`` (and listen on 127.0.0.1) and answer ``GET ready_path``
(``/_sim/state`` by default) with 200 once it can serve. It runs with the test's own
interpreter; its standard output and error go to a temporary file, shown if it does not start
or if it dies before it is stopped. Needs only the SDK (httpx).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

__all__ = ["free_port", "running_simulator", "wait_until_ready"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_text(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-10_000:]


def wait_until_ready(
    proc: subprocess.Popen[bytes], url: str, deadline: float, *, below: int | None = None
) -> bool:
    """True once ``url`` answers 200 (any status under ``below``, when given); False if the
    process exits first or the ``deadline`` (a ``time.monotonic()`` value) passes."""
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=1).status_code
            if status == 200 if below is None else status < below:
                return True
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_simulator(
    module: str,
    *args: str,
    ready_path: str = "/_sim/state",
    start_timeout: float = 20.0,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``python -m module --port N *args`` and yield its base URL (``http://127.0.0.1:N``)
    once ``GET ready_path`` answers 200; stop it (terminate, then kill) on exit.

    ``cwd`` and ``env`` are the process's (by default the test's own). Raises
    ``RuntimeError`` with the simulator's output if it is not ready within ``start_timeout``
    seconds. A start that fails because the port was taken in the meantime is retried on
    another port.
    """
    with tempfile.TemporaryFile() as log:
        for attempt in range(3):
            port = free_port()
            proc = subprocess.Popen(  # noqa: S603 - our interpreter, the test's module
                [sys.executable, "-u", "-m", module, "--port", str(port), *args],
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            base_url = f"http://127.0.0.1:{port}"
            if wait_until_ready(proc, base_url + ready_path, time.monotonic() + start_timeout):
                break
            exited = proc.poll() is not None
            _stop(proc)
            if not (exited and attempt < 2 and "in use" in _log_text(log)):
                raise RuntimeError(
                    f"simulator {module} did not start on port {port}; its output:\n"
                    + _log_text(log)
                )
        try:
            yield base_url
        finally:
            died = proc.poll() is not None
            _stop(proc)
            if died:
                print(  # noqa: T201 - shown by pytest with the failing tests' report
                    f"simulator {module} exited early ({proc.returncode}); its output:\n"
                    + _log_text(log),
                    file=sys.stderr,
                )

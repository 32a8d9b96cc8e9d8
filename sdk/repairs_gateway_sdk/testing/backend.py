"""Start and stop a backend (or its simulator) for a contract run, and a black hole server
for timeout checks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from repairs_gateway_sdk.testing.simulators import free_port
from repairs_gateway_sdk.testing.spec import Backend, substitute

__all__ = ["BackendFailed", "RunningBackend", "black_hole", "free_port", "running_backend"]


class BackendFailed(RuntimeError):
    pass


@dataclass
class RunningBackend:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _command(backend: Backend, port: int) -> list[str]:
    cmd = [str(c) for c in substitute(backend.command, {"port": str(port)}, env=False)]
    cmd = [sys.executable if c == "{python}" else c for c in cmd]
    if cmd[0] in ("python", "python3"):
        cmd[0] = sys.executable  # the simulator runs in the same environment as the suite
    return cmd


def _ready(url: str | None, port: int) -> bool:
    if url is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback, our URL
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def running_backend(backend: Backend, base_dir: Path, log_dir: Path) -> Iterator[RunningBackend]:
    """Start ``backend.command`` on a free port, wait until it answers, stop it afterwards."""
    port = free_port()
    cmd = _command(backend, port)
    ready_url = substitute(backend.ready_url, {"port": str(port)}, env=False)
    cwd = (base_dir / backend.cwd).resolve() if backend.cwd else base_dir
    env = {**os.environ, **substitute(backend.env, {"port": str(port)})}
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"backend-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - the command comes from the contract config
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    running = RunningBackend(port, proc, log_path)
    try:
        deadline = time.monotonic() + backend.ready_timeout_seconds
        while not _ready(ready_url, port):
            if proc.poll() is not None:
                raise BackendFailed(
                    f"backend {' '.join(cmd)} exited with {proc.returncode} before it was "
                    f"ready:\n{running.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BackendFailed(
                    f"backend {' '.join(cmd)} not ready at {ready_url or f'port {port}'} after "
                    f"{backend.ready_timeout_seconds:g}s:\n{running.log_tail()}"
                )
            time.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the kernel completes the handshake)
    and never answers a byte: a backend that hangs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        yield int(s.getsockname()[1])

"""Real processes for tests and benchmarks: the gateway's CLI commands and servers (gateway
replicas, workers, simulators) on loopback ports that can be killed with SIGKILL and started
again on the same port.

    env = clean_env(DATABASE_URL=url, GATEWAY_SECRET_KEY=key)
    assert all(rc == 0 for rc, _ in migrate_concurrently(env, 3))
    replica = ServerProcess.replica("gw0", config_dir, env, logs)   # serve --no-worker
    replica.start(); replica.kill(); replica.start()
    worker = ServerProcess.worker("worker", config_dir, env, logs)  # /metrics on its own port

Used by tests/gateway/test_operations.py, tests/gateway/test_topology.py and
bench/fault_campaign.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.simulators import ROOT, free_port, wait_until_ready


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any gateway setting (GATEWAY_*, DATABASE_URL), plus
    ``extra``: a child sees only what the test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    """``python -m gateway.cli *args`` with its output (stdout and stderr) on a pipe."""
    return subprocess.Popen(  # noqa: S603 - our own CLI, arguments from the test
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        **kw,  # type: ignore[call-overload]
    )


def migrate_concurrently(
    env: dict[str, str], n: int = 3, timeout: float = 120
) -> list[tuple[int, str]]:
    """``repairs-gateway migrate`` started ``n`` times at once; (exit status, output) of each."""
    procs = [cli("migrate", env=env) for _ in range(n)]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


class ServerProcess:
    """A server process on a fixed loopback port that can be killed (-9) and started again.

    ``argv`` follows ``python -u``; the port is passed as ``--port N`` (``port_arg``) or, for
    processes without one (``worker``), only through the environment the caller built.
    ``start`` waits until ``GET ready_path`` answers below 500."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        ready_path: str,
        log: Path,
        env: dict[str, str] | None = None,
        *,
        port_arg: bool = True,
    ) -> None:
        self.name, self.argv, self.port, self.ready_path = name, argv, port, ready_path
        self.log, self.env, self.port_arg = log, env, port_arg
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @classmethod
    def replica(
        cls, name: str, config_dir: Path, env: dict[str, str], logs: Path, port: int | None = None
    ) -> ServerProcess:
        """``repairs-gateway serve --no-worker``: requests only, ready when /health/ready is."""
        argv = ["-m", "gateway.cli", "serve", "--no-worker", "--config-dir", str(config_dir)]
        return cls(name, argv, port or free_port(), "/health/ready", logs / f"{name}.log", env)

    @classmethod
    def worker(
        cls, name: str, config_dir: Path, env: dict[str, str], logs: Path, port: int | None = None
    ) -> ServerProcess:
        """``repairs-gateway worker``, its /metrics on a port of its own (how it is seen up)."""
        port = port or free_port()
        env = {**env, "GATEWAY_METRICS_PORT": str(port), "GATEWAY_METRICS_HOST": "127.0.0.1"}
        argv = ["-m", "gateway.cli", "worker", "--config-dir", str(config_dir)]
        return cls(name, argv, port, "/metrics", logs / f"{name}.log", env, port_arg=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        port = ["--port", str(self.port)] if self.port_arg else []
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own modules
                [sys.executable, "-u", *self.argv, *port],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if wait_until_ready(
            self.proc, self.url + self.ready_path, time.monotonic() + timeout, below=500
        ):
            return
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    async def restart(self) -> None:
        self.kill()
        self.restarts += 1
        await asyncio.to_thread(self.start)

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)  # type: ignore[arg-type]

"""What the foundation benchmarks share: the machine's description, CPU accounting, free ports,
pinning, and starting the gateway and the floor as real server processes."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
DEMO_CONFIG = REPO / "deploy" / "config"
DEMO_SOR = REPO / "mappings" / "examples" / "demo-sor.csv"
SOR_CODE = "N631111"  # shower hose, plumbing, small: bookable online in the demo table
SERVER_CPU = 0
LOADGEN_CPU = 1
GOAL_RATIO = 0.60
GOAL_IMPORT_S = 120.0
GOAL_PEAK_BYTES = 2 * 1024**3
GOAL_LOOKUP_P99_MS = 5.0
FLAT_FACTOR = 1.5  # "does not grow": p50 at the largest size within 1.5x of the smallest
NOISY = 0.25  # cores used by other processes during a run above which it is measured again


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# =========================================================================================
# Machine and environment
# =========================================================================================
def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "h11", "uvloop"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "-"
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    git = {}
    try:
        git["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        git["modified"] = ", ".join(sorted(x[3:] for x in dirty if x.strip()))
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "git": git,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def busy_cpu_seconds() -> float:
    """Machine-wide busy CPU time (all cores) from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = f[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime+stime of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})

"""Closed-loop HTTP load generators for the benchmarks, always in a process of their own.

- ``wrk`` (Debian package ``wrk``) when it is installed: C, one thread, keep-alive
  connections; a Lua script rotates through the request paths and prints its figures as JSON.
- otherwise this module's own generator (``python -m bench.loadgen``): asyncio, one keep-alive
  HTTP/1.1 connection per client, each client sending its next request as soon as the previous
  answer is read. It needs more CPU per request than wrk, so on a 2-core machine its figures
  are a little lower; the bench says which generator it used.

Both report requests completed in the measured window, throughput, p50/p90/p99 latency (per
request, from sending it to reading the whole answer) and the count of non-2xx answers and
socket errors. ``run_load`` picks the generator and returns one ``LoadResult``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

WRK_MARK = "WRKJSON "


@dataclass
class LoadResult:
    generator: str
    concurrency: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers + socket errors + timeouts
    loadgen_cpu_s: float = 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# -- wrk ----------------------------------------------------------------------------------
_WRK_LUA = """
local paths = {%(paths)s}
local n = #paths
local i = %(offset)d
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i %% n) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d,"status_errors":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"timeouts":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_wrk(
    base_url: str, paths: list[str], headers: dict[str, str], concurrency: int, seconds: int
) -> LoadResult:
    wrk = wrk_path()
    assert wrk is not None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(
            _WRK_LUA
            % {
                "paths": ", ".join(_lua_string(p) for p in paths),
                "offset": 0,
                "mark": WRK_MARK,
            }
        )
        script = fh.name
    cmd = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", script]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(base_url + paths[0])
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        os.unlink(script)
    line = next((x for x in out.splitlines() if x.startswith(WRK_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    d = json.loads(line[len(WRK_MARK) :])
    dur = d["duration_us"] / 1e6
    errors = sum(
        d[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return LoadResult(
        generator="wrk",
        concurrency=concurrency,
        duration_s=dur,
        requests=d["requests"],
        rps=d["requests"] / dur,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        errors=errors,
        loadgen_cpu_s=usage.ru_utime + usage.ru_stime,
    )


# -- the Python generator ----------------------------------------------------------------------
def _requests(host: str, port: int, paths: list[str], headers: dict[str, str]) -> list[bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("latin-1") for p in paths
    ]


async def _client(
    host: str,
    port: int,
    reqs: list[bytes],
    offset: int,
    record_from: float,
    stop_at: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        counts["errors"] += 1
        return
    n = len(reqs)
    i = offset
    clock = time.perf_counter
    try:
        while True:
            t0 = clock()
            if t0 >= stop_at:
                break
            writer.write(reqs[i % n])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            j = lower.find(b"\r\ncontent-length:")
            if j < 0:
                raise ConnectionError("answer without content-length")
            length = int(lower[j + 17 : lower.index(b"\r\n", j + 2)])
            await reader.readexactly(length)
            t1 = clock()
            if t0 >= record_from and t1 <= stop_at:
                latencies.append(t1 - t0)
                if not head.startswith(b"HTTP/1.1 2"):
                    counts["errors"] += 1
    except (OSError, asyncio.IncompleteReadError, ConnectionError, ValueError):
        counts["errors"] += 1
    finally:
        writer.close()


async def _drive(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], int, float]:
    reqs = _requests(host, port, paths, headers)
    latencies: list[float] = []
    counts = {"errors": 0}
    start = time.perf_counter() + 0.05  # connections open before the window starts
    stop = start + seconds
    await asyncio.gather(
        *(_client(host, port, reqs, c, start, stop, latencies, counts) for c in range(concurrency))
    )
    return latencies, counts["errors"], seconds


def python_load(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
) -> LoadResult:
    """Run the Python generator in this process (``run_load`` runs it in a child process)."""
    latencies, errors, dur = asyncio.run(_drive(host, port, paths, headers, concurrency, seconds))
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        generator="python",
        concurrency=concurrency,
        duration_s=dur,
        requests=len(ms),
        rps=len(ms) / dur,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else float("nan"),
        errors=errors,
    )


def _run_python(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: int,
    cpu: int | None,
) -> LoadResult:
    spec = {
        "host": host,
        "port": port,
        "paths": paths,
        "headers": headers,
        "concurrency": concurrency,
        "seconds": seconds,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", "--spec", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"python load generator failed: {err.strip()}")
    r = LoadResult(**json.loads(out.strip().splitlines()[-1]))
    r.loadgen_cpu_s = usage.ru_utime + usage.ru_stime
    return r


def run_load(
    generator: str,
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: int,
    cpu: int | None = None,
) -> LoadResult:
    """One closed-loop run in a separate process; ``generator`` is ``wrk`` or ``python``."""
    if generator == "wrk":
        if cpu is None:
            return _run_wrk(f"http://{host}:{port}", paths, headers, concurrency, seconds)
        # wrk is started through taskset-like affinity: set ours, spawn, restore.
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        try:
            return _run_wrk(f"http://{host}:{port}", paths, headers, concurrency, seconds)
        finally:
            os.sched_setaffinity(0, before)
    return _run_python(host, port, paths, headers, concurrency, seconds, cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description="closed-loop HTTP/1.1 load generator")
    ap.add_argument("--spec", help="JSON: host, port, paths, headers, concurrency, seconds")
    ap.add_argument("--url", help="e.g. http://127.0.0.1:8000/path?q=1 (instead of --spec)")
    ap.add_argument("-c", "--concurrency", type=int, default=10)
    ap.add_argument("-d", "--seconds", type=float, default=5.0)
    ap.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    args = ap.parse_args()
    if args.spec:
        spec = json.loads(args.spec)
    elif args.url:
        from urllib.parse import urlsplit

        u = urlsplit(args.url)
        spec = {
            "host": u.hostname,
            "port": u.port or 80,
            "paths": [u.path + (f"?{u.query}" if u.query else "")],
            "headers": dict(h.split(": ", 1) for h in args.header),
            "concurrency": args.concurrency,
            "seconds": args.seconds,
        }
    else:
        ap.error("give --spec or --url")
    r = python_load(
        spec["host"],
        spec["port"],
        spec["paths"],
        spec["headers"],
        spec["concurrency"],
        spec["seconds"],
    )
    print(json.dumps(asdict(r)))


if __name__ == "__main__":
    main()

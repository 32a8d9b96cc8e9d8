"""Part 1 of the foundation benchmark: the gateway's hot calls against the framework's floor
(`bench.floor_app`), and part 3: an in-process profile when the gateway misses its goal.
Run through `python -m bench.bench_foundation`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    DEMO_CONFIG,
    DEMO_SOR,
    GOAL_RATIO,
    HOST,
    LOADGEN_CPU,
    NOISY,
    PY,
    REPO,
    SERVER_CPU,
    SOR_CODE,
    busy_cpu_seconds,
    free_port,
    log,
    pin,
    process_cpu_seconds,
)
from bench.loadgen import LoadResult, run_load, wrk_path


# =========================================================================================
# Part 1: HTTP, gateway against the floor
# =========================================================================================
@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("content-type") or ""
    finally:
        conn.close()


def wait_ready(server: Server, path: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.proc.returncode}):\n"
                + server.log_path.read_text()[-3000:]
            )
        try:
            http_get(server.port, path, {})
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f}s")


def gateway_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("DATABASE_URL", None)
    env["GATEWAY_DATA_DIR"] = str(data_dir)
    env["DATABASE_URL"] = f"sqlite:///{data_dir / 'gateway.db'}"
    return env


def demo_config_dir(tmp: Path) -> Path:
    """A copy of the demo council's configuration only (other councils may appear in
    deploy/config while people work; the bench must not depend on them)."""
    import yaml

    cfg = tmp / "config"
    cfg.mkdir()
    body = yaml.safe_load((DEMO_CONFIG / "demo.yaml").read_text())
    body["mappings"] = str(DEMO_SOR)
    (cfg / "demo.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    shutil.copy(DEMO_CONFIG / "demo-properties.csv", cfg / "demo-properties.csv")
    return cfg


def start_gateway(tmp: Path, config_dir: Path, data_dir: Path, cpu: int | None) -> Server:
    port = free_port()
    log_path = tmp / "gateway.log"
    proc = subprocess.Popen(
        [PY, "-m", "gateway.cli", "serve", "--config-dir", str(config_dir), "--port", str(port)],
        cwd=REPO,
        env=gateway_env(data_dir),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=pin(cpu),
    )
    server = Server("gateway", proc, port, log_path)
    wait_ready(server, "/health")
    return server


def start_floor(tmp: Path, answers_path: Path, cpu: int | None) -> Server:
    port = free_port()
    log_path = tmp / "floor.log"
    proc = subprocess.Popen(
        [PY, "-m", "bench.floor_app", str(answers_path), "--port", str(port)],
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=pin(cpu),
    )
    server = Server("floor", proc, port, log_path)
    wait_ready(server, "/")
    return server


def create_key(data_dir: Path) -> str:
    """``repairs-gateway keys create`` with the server's environment. The rate limit is set
    out of reach so the token bucket runs on every request but never answers 429."""
    out = subprocess.run(
        [PY, "-m", "gateway.cli", "keys", "create", "bench", "--council", "demo"]
        + ["--rate-per-minute", "1000000000"],
        cwd=REPO,
        env=gateway_env(data_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(x for x in out.split() if x.startswith("rgw_"))


def capture_answers(
    gateway: Server, headers: dict[str, str], config_dir: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]], dict[str, bytes]]:
    """The gateway's real answers for every demo postcode and every property that can book
    online; returns (answers for the floor, request paths per route, raw bodies per path)."""
    from bench.floor_app import address_key, appointment_key

    with (config_dir / "demo-properties.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    answers: dict[str, dict[str, Any]] = {"addresses": {}, "appointments": {}}
    paths: dict[str, list[str]] = {"addresses": [], "appointments": []}
    raw: dict[str, bytes] = {}
    for pc in sorted({r["postcode"] for r in rows}):
        path = f"/v1/councils/demo/addresses?postcode={quote(pc)}"
        status, body, _ = http_get(gateway.port, path, headers)
        if status != 200:
            raise RuntimeError(f"gateway answered {status} to {path}: {body[:300]!r}")
        answers["addresses"][address_key("demo", pc)] = json.loads(body)
        paths["addresses"].append(path)
        raw[path] = body
    for r in rows:
        pid = r["property_id"]
        path = f"/v1/councils/demo/appointments?property_id={pid}&sor_code={SOR_CODE}"
        status, body, _ = http_get(gateway.port, path, headers)
        if status == 200:
            answers["appointments"][appointment_key("demo", pid, SOR_CODE)] = json.loads(body)
            paths["appointments"].append(path)
            raw[path] = body
    if not paths["appointments"]:
        raise RuntimeError("no demo property offered appointments")
    return answers, paths, raw


@dataclass
class Cell:
    route: str
    concurrency: int
    server: str
    result: LoadResult
    server_cpu: float  # cores used by the server process during the run
    other_cpu: float  # cores used by everything else on the machine (noise)
    tries: int = 1


def measure(
    server: Server,
    route: str,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    generator: str,
    warmup: int,
    duration: int,
    cpu: int | None,
    tries: int = 1,
) -> Cell:
    """Warm up, then measure; while other processes used more than NOISY cores meanwhile,
    measure again (up to ``tries`` runs in all) and keep the quietest run."""
    if warmup > 0:
        run_load(generator, HOST, server.port, paths, headers, concurrency, warmup, cpu)
    best: Cell | None = None
    for attempt in range(1, tries + 1):
        s0, b0, t0 = process_cpu_seconds(server.proc.pid), busy_cpu_seconds(), time.monotonic()
        r = run_load(generator, HOST, server.port, paths, headers, concurrency, duration, cpu)
        s1, b1, t1 = process_cpu_seconds(server.proc.pid), busy_cpu_seconds(), time.monotonic()
        wall = t1 - t0
        other = max(0.0, (b1 - b0) - (s1 - s0) - r.loadgen_cpu_s) / wall
        cell = Cell(route, concurrency, server.name, r, (s1 - s0) / wall, other)
        if best is None or cell.other_cpu < best.other_cpu:
            best = cell
        best.tries = attempt
        if best.other_cpu <= NOISY:
            break
    assert best is not None
    return best


@dataclass
class HttpResults:
    generator: str
    duration: int
    warmup: int
    pinned: bool
    tries: int
    bodies_identical: bool
    paths: dict[str, list[str]]
    cells: list[Cell] = field(default_factory=list)

    def get(self, route: str, c: int, server: str) -> Cell:
        return next(
            x for x in self.cells if (x.route, x.concurrency, x.server) == (route, c, server)
        )


def run_http(args: argparse.Namespace, tmp: Path) -> tuple[HttpResults, dict[str, Any]]:
    generator = args.loadgen
    if generator == "auto":
        generator = "wrk" if wrk_path() else "python"
    if generator == "wrk" and not wrk_path():
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    cpu_server = None if args.no_pin else SERVER_CPU
    cpu_load = None if args.no_pin else LOADGEN_CPU
    config_dir = demo_config_dir(tmp)
    data_dir = tmp / "data"
    data_dir.mkdir()
    log(f"[http] creating an API key and starting the gateway (data in {data_dir})")
    key = create_key(data_dir)
    headers = {"Authorization": f"Bearer {key}"}
    gateway = start_gateway(tmp, config_dir, data_dir, cpu_server)
    floor: Server | None = None
    try:
        answers, paths, raw = capture_answers(gateway, headers, config_dir)
        answers_path = tmp / "answers.json"
        answers_path.write_text(json.dumps(answers))
        floor = start_floor(tmp, answers_path, cpu_server)
        identical = all(http_get(floor.port, p, headers)[1] == body for p, body in raw.items())
        log(
            f"[http] {len(paths['addresses'])} address and {len(paths['appointments'])} "
            f"appointment requests captured; floor bodies identical: {identical}; "
            f"generator: {generator}"
        )
        res = HttpResults(
            generator, args.duration, args.warmup, not args.no_pin, args.tries, identical, paths
        )
        for route in ("addresses", "appointments"):
            for c in args.concurrency:
                for server in (floor, gateway):
                    cell = measure(
                        server,
                        route,
                        paths[route],
                        headers,
                        c,
                        generator,
                        args.warmup,
                        args.duration,
                        cpu_load,
                        args.tries,
                    )
                    r = cell.result
                    log(
                        f"[http] {route:12} c={c:<3} {server.name:8} {r.rps:8.0f} req/s "
                        f"p50 {r.p50_ms:7.2f} ms p99 {r.p99_ms:7.2f} ms errors {r.errors} "
                        f"server cpu {cell.server_cpu:.2f} other cpu {cell.other_cpu:.2f} "
                        f"(run {cell.tries})"
                    )
                    res.cells.append(cell)
        ctx = {
            "config_dir": config_dir,
            "data_dir": data_dir,
            "answers": answers,
            "paths": paths,
        }
        return res, ctx
    finally:
        if floor is not None:
            floor.stop()
        gateway.stop()


def cpu_us_per_request(cell: Cell) -> float:
    """Server CPU time per answered request: unlike req/s, hardly moved by other processes
    taking CPU time away (it is what the server spends, not how much it was given)."""
    return cell.server_cpu / cell.result.rps * 1e6 if cell.result.rps else float("nan")


def http_markdown(res: HttpResults) -> tuple[str, bool]:
    lines = [
        "| call | clients | floor req/s | floor p50 / p99 ms | floor CPU µs/req "
        "| gateway req/s | gateway p50 / p99 ms | gateway CPU µs/req "
        "| gateway / floor req/s | floor / gateway CPU per req | gateway CPU | other load "
        "| runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    for route in ("addresses", "appointments"):
        for c in sorted({x.concurrency for x in res.cells}):
            f, g = res.get(route, c, "floor"), res.get(route, c, "gateway")
            ratio = g.result.rps / f.result.rps if f.result.rps else 0.0
            fc, gc = cpu_us_per_request(f), cpu_us_per_request(g)
            ok &= ratio >= GOAL_RATIO
            errs = f.result.errors + g.result.errors
            mark = "" if ratio >= GOAL_RATIO else " (below 60%)"
            lines.append(
                f"| {route} | {c} | {f.result.rps:,.0f} | {f.result.p50_ms:.2f} / "
                f"{f.result.p99_ms:.2f} | {fc:,.0f} | {g.result.rps:,.0f} "
                f"| {g.result.p50_ms:.2f} / {g.result.p99_ms:.2f} | {gc:,.0f} "
                f"| **{ratio:.0%}**{mark} | {fc / gc:.0%} | {g.server_cpu:.2f} "
                f"| {max(f.other_cpu, g.other_cpu):.2f} | {f.tries}+{g.tries} |"
                + (f" errors: {errs} |" if errs else "")
            )
    note = (
        f"\nGenerator: **{res.generator}**, {res.duration} s measured after {res.warmup} s "
        f"of warm-up per cell, floor then gateway for each cell; servers "
        f"{'pinned to CPU 0, generator to CPU 1' if res.pinned else 'not pinned'}. "
        f"Floor bodies byte-identical to the gateway's: {'yes' if res.bodies_identical else 'NO'}."
        " *CPU µs/req*: the server process's CPU time (all threads) per answered request;"
        " *floor / gateway CPU per req*: the throughput ratio to expect when both are"
        " CPU-bound on a quiet core; *gateway CPU*: cores the gateway used during its run"
        " (1.00 = saturated); *other load*: cores used by anything else on the machine"
        " meanwhile (noise; the higher of the two runs); *runs*: measurements of"
        f" floor+gateway (a run is repeated, up to {res.tries} times, when other processes"
        f" used more than {NOISY} cores, and the quietest is kept).\n"
    )
    return "\n".join(lines) + "\n" + note, ok


# =========================================================================================
# Part 3: in-process profile of the gateway (when it misses the HTTP goal)
# =========================================================================================
def _scope(path_qs: str, headers: dict[str, str]) -> dict[str, Any]:
    path, _, qs = path_qs.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": qs.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _asgi_get(app: Any, path_qs: str, headers: dict[str, str]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path_qs, headers), receive, send)
    return status


def _category(filename: str, func: str) -> str:
    if filename == "~":  # a C function; cProfile names its type in func
        for hint, cat in (
            ("sqlite3", "sqlite3 (C)"),
            ("pydantic_core", "pydantic-core (C)"),
            ("_hashlib", "hashlib/hmac (C)"),
            ("hmac", "hashlib/hmac (C)"),
            ("_json", "json (C)"),
            ("re.Pattern", "re (C)"),
            ("zlib", "zlib (C)"),
            ("write", "I/O writes (C)"),
        ):
            if hint in func:
                return cat
        return "other builtins (C)"
    p = filename.replace("\\", "/")
    if "/site-packages/" in p:
        return p.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if p.startswith(str(REPO)):
        rel = p[len(str(REPO)) + 1 :]
        return "/".join(rel.split("/")[:2]) if rel.startswith("gateway/api") else rel
    if "/lib/python3" in p:
        return "stdlib: " + p.rsplit("/", 1)[1]
    return p


HOT_LIBRARY_FUNCTIONS = (
    "solve_dependencies",
    "run_in_threadpool",
    "serialize_response",
    "poll",  # in-process the loop only waits for worker threads (thread pool, aiosqlite)
    "request_params_to_args",
)
HOT_LIBRARY_FILES = ("structlog/_base.py", "prometheus_client/metrics.py", "itsdangerous/")


async def _per_call_us(fn: Callable[[], Any], reps: int) -> float:
    """Mean µs per call of ``fn`` (awaited when it returns an awaitable)."""
    first = fn()
    is_async = asyncio.iscoroutine(first)
    if is_async:
        await first
    t0 = time.perf_counter()
    for _ in range(reps):
        r = fn()
        if is_async:
            await r
    return (time.perf_counter() - t0) / reps * 1e6


async def _components(rt: Any, key: str, reps: int) -> list[dict[str, Any]]:
    """Micro-timings of the pieces one request goes through (each guarded: the code is moving
    and a piece that is gone is reported as such, not as a failure of the bench)."""
    from datetime import timedelta

    council = rt.gateway.council("demo")
    adaptor = next(a for a in council.adaptors.values() if hasattr(a, "calendar"))
    rows: list[dict[str, Any]] = []

    async def add(route: str, name: str, make: Callable[[], Callable[[], Any]]) -> None:
        try:
            us: float | None = await _per_call_us(make(), reps)
            note = ""
        except Exception as exc:  # noqa: BLE001 - report and go on
            us, note = None, f"{type(exc).__name__}: {exc}"[:120]
        rows.append({"route": route, "name": name, "us": us, "note": note})

    def metrics() -> Callable[[], Any]:
        from gateway.api.middleware import LATENCY, REQUESTS

        route = "/v1/councils/{council}/addresses"

        def f() -> None:
            REQUESTS.labels(route, "GET", "200").inc()
            LATENCY.labels(route).observe(0.0005)

        return f

    def access_line() -> Callable[[], Any]:
        from gateway.logging import access_line as line

        return lambda: line("GET", "/v1/councils/{council}/addresses", 200, 0.5, "a" * 32)

    await add("both", "access log line (written directly, gateway/logging.py)", access_line)
    await add("both", "request metrics (2 labelled prometheus series)", metrics)
    await add(
        "both", "API key check (cached key, token bucket)", lambda: lambda: rt.authenticate(key)
    )
    await add(
        "addresses",
        "Gateway.addresses (whole service call)",
        lambda: lambda: rt.gateway.addresses(council, "LN1 1AA"),
    )
    index = adaptor._index
    await add(
        "addresses",
        "PropertyIndex.by_postcode (SQLite + Property models)",
        lambda: lambda: index.by_postcode("LN1 1AA"),
    )

    await add(
        "addresses",
        "Gateway.address_answer (the route's call: rendered answer, cached 15 s)",
        lambda: lambda: rt.gateway.address_answer(council, "LN1 1AA"),
    )
    job = rt.gateway.resolve_job(council, sor_code=SOR_CODE, trade=None, size=None, priority=None)
    await add(
        "appointments",
        "Gateway.appointments (whole service call)",
        lambda: lambda: rt.gateway.appointments(council, "00012345", job, None, None),
    )

    def availability() -> Callable[[], Any]:
        from repairs_gateway_sdk.model import AvailabilityQuery
        from repairs_gateway_sdk.timeutil import today_london

        prop = index.by_id("00012345")
        q = AvailabilityQuery(
            property=prop, job=job, start_from=today_london(), page_size=10, resume=None
        )
        return lambda: adaptor.availability(q)

    await add(
        "appointments", "CsvFallbackAdaptor.availability (calendar + usage query)", availability
    )

    def usage() -> Callable[[], Any]:
        from repairs_gateway_sdk.timeutil import today_london

        first = today_london()
        return lambda: adaptor._usage(job.trade.value, first, first + timedelta(days=42))

    await add("appointments", "slot usage query alone (SQLAlchemy async + aiosqlite)", usage)

    def tokens() -> Callable[[], Any]:
        start, end = "2030-01-07T08:00:00+00:00", "2030-01-07T12:00:00+00:00"
        page = [(start, end, "morning", {"key": f"{start}/{end}"})] * 10
        return lambda: rt.codec.slot_tokens("demo", "demo_csv", "00012345", job.compact(), page)

    await add("appointments", "a page's 10 slot tokens (JSON, HMAC-SHA256)", tokens)

    def page_json() -> Callable[[], Any]:
        from gateway.api.routes import slot_page_json

        page: list[Any] = []

        async def f() -> Any:
            if not page:
                page.append(await rt.gateway.appointments(council, "00012345", job, None, None))
            return slot_page_json("demo", "00012345", page[0])

        return f

    await add("appointments", "the page's JSON (slot_page_json)", page_json)
    return rows


def _pyinstrument_rows(session: Any, top: int) -> list[tuple[float, str]]:
    """Inclusive time of the gateway's own functions and a few library hot spots, as a share
    of the time inside the ASGI app."""
    repo = str(REPO) + "/"
    inclusive: dict[str, float] = {}
    app_time = 0.0

    def walk(frame: Any, ancestors: frozenset[str]) -> None:
        nonlocal app_time
        path = frame.file_path or ""
        label = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        if frame.function == "_asgi_get" and label not in ancestors:
            app_time += frame.time
        mine = path.startswith(repo) and "/bench/" not in path
        hot = frame.function in HOT_LIBRARY_FUNCTIONS or any(f in path for f in HOT_LIBRARY_FILES)
        if (mine or hot) and label not in ancestors:
            inclusive[label] = inclusive.get(label, 0.0) + frame.time
        for child in frame.children:
            walk(child, ancestors | {label})

    walk(session.root_frame(), frozenset())
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    return [(t / app_time if app_time else 0.0, label) for label, t in ranked]


def _cprofile_rows(prof: Any, top: int) -> list[tuple[float, str]]:
    import pstats

    st = pstats.Stats(prof)
    stats: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    cats: dict[str, float] = {}
    for (fn, _line, func), v in stats.items():
        c = _category(fn, func)
        cats[c] = cats.get(c, 0.0) + v[2]
    ranked = sorted(cats.items(), key=lambda kv: -kv[1])[:top]
    return [(t / total, f"own time in {c}") for c, t in ranked]


def child_profile(spec_path: str) -> None:
    """Run in a fresh process: per-request cost of the app alone (no HTTP server, no
    sockets) for the gateway and the floor, micro-timings of the pieces of a request, and a
    profile of each call (pyinstrument when installed, else cProfile); prints JSON."""
    from bench.floor_app import build_app
    from gateway.api.app import create_app
    from gateway.logging import configure
    from gateway.runtime import Runtime
    from gateway.settings import Settings

    spec = json.loads(Path(spec_path).read_text())
    settings = Settings(config_dir=Path(spec["config_dir"]), data_dir=Path(spec["data_dir"]))
    log_stream = Path(spec["log_path"]).open("a")  # noqa: SIM115 - open for the whole run
    configure(settings.log_level, stream=log_stream)  # as `serve` does, logs to a file
    rt = Runtime(settings, run_worker=False)
    app = create_app(settings, runtime=rt)
    floor = build_app(spec["answers"])
    n = int(spec["requests"])
    try:
        import pyinstrument

        profiler = f"pyinstrument {pyinstrument.__version__}"
    except ImportError:
        profiler = "cProfile"
    out: dict[str, Any] = {"requests": n, "app_us": {}, "profiles": {}, "profiler": profiler}

    async def main() -> None:
        async with app.router.lifespan_context(app):
            key = await rt.keys.create("profile", ["demo"], "frontend", 10**9)
            headers = {"Authorization": f"Bearer {key}"}
            for route, paths in spec["paths"].items():
                for which, target in (("gateway", app), ("floor", floor)):
                    for i in range(300):
                        assert await _asgi_get(target, paths[i % len(paths)], headers) == 200
                    t0 = time.perf_counter()
                    for i in range(n):
                        await _asgi_get(target, paths[i % len(paths)], headers)
                    out["app_us"][f"{route}/{which}"] = (time.perf_counter() - t0) / n * 1e6
            out["components"] = await _components(rt, key, max(200, n // 2))
            for route, paths in spec["paths"].items():
                if profiler.startswith("pyinstrument"):
                    from pyinstrument import Profiler

                    p = Profiler(interval=0.0002, async_mode="disabled")
                    p.start()
                    for i in range(n):
                        await _asgi_get(app, paths[i % len(paths)], headers)
                    p.stop()
                    rows = _pyinstrument_rows(p.last_session, 30)
                else:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                    for i in range(n):
                        await _asgi_get(app, paths[i % len(paths)], headers)
                    prof.disable()
                    rows = _cprofile_rows(prof, 15)
                out["profiles"][route] = rows

    asyncio.run(main())
    log_stream.close()
    print(json.dumps(out))


def run_profile(ctx: dict[str, Any], tmp: Path, requests: int, cpu: int | None) -> dict:
    spec = {
        "config_dir": str(ctx["config_dir"]),
        "data_dir": str(ctx["data_dir"]),
        "answers": ctx["answers"],
        "paths": ctx["paths"],
        "requests": requests,
        "log_path": str(tmp / "profile.log"),
    }
    spec_path = tmp / "profile.json"
    spec_path.write_text(json.dumps(spec))
    code = "import sys; from bench.http_floor import child_profile; child_profile(sys.argv[1])"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PY, "-c", code, str(spec_path)],
        cwd=REPO,
        env=gateway_env(ctx["data_dir"]),
        capture_output=True,
        text=True,
        preexec_fn=pin(cpu),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"profile failed: {proc.stderr[-3000:]}")
    log(f"[profile] done in {time.perf_counter() - t0:.0f}s")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def profile_markdown(p: dict[str, Any]) -> str:
    us = p["app_us"]
    lines = [
        f"Each call driven {p['requests']:,} times straight through the ASGI app (no HTTP "
        "server, no sockets), one at a time, after 300 warm-up calls:",
        "",
        "| call | gateway app µs/request | floor app µs/request | difference |",
        "|---|---:|---:|---:|",
    ]
    for route in p["profiles"]:
        g, f = us[f"{route}/gateway"], us[f"{route}/floor"]
        lines.append(f"| {route} | {g:,.0f} | {f:,.0f} | {g - f:,.0f} |")
    lines += [
        "",
        "The pieces of a request, timed alone (mean µs per call; share of that call's "
        "gateway app time above):",
        "",
        "| call | piece | µs | share |",
        "|---|---|---:|---:|",
    ]
    for c in p.get("components", []):
        routes = ["addresses", "appointments"] if c["route"] == "both" else [c["route"]]
        if c["us"] is None:
            lines.append(f"| {c['route']} | {c['name']} | n/a | {c['note']} |")
            continue
        share = ", ".join(
            f"{c['us'] / us[f'{r}/gateway']:.0%}" + (f" of {r}" if len(routes) > 1 else "")
            for r in routes
            if f"{r}/gateway" in us
        )
        lines.append(f"| {c['route']} | {c['name']} | {c['us']:,.1f} | {share} |")
    for route, rows in p["profiles"].items():
        lines += [
            "",
            f"Profile of `{route}` ({p['profiler']}; inclusive time as a share of the time "
            "inside the app; the gateway's own functions and a few library hot spots):",
            "",
        ]
        lines += [f"- {share:.0%} {label}" for share, label in rows if share >= 0.01]
    return "\n".join(lines) + "\n"

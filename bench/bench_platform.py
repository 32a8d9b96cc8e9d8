"""Platform scale (issue 16): one gateway process serving N councils.

For N in 1, 100, 400 and 1,600 generated councils (a third Civica UH + Kirona DRS, a third
Totalmobile with a CSV address file, a third CSV fallback only, all on one set of simulators
on loopback), it starts `repairs-gateway serve` as a real process and reports:

- start-up: seconds from launch to /health/live (listening) and /health/ready;
- RSS after start, and after the first calls (MiB), with the cost per council as a slope;
- first calls to up to 12 councils of each kind, spread over the range (medians);
- first call to a council (its adaptors start lazily on that call) against a warm call to
  the same council plus the backend's own round trips that call needs: for a UH + DRS
  council, the UH exchanges of its postcode search (recorded from the adaptor, in their
  rounds: the list, then the listed properties' records at once, then their parents'),
  replayed raw with plain httpx on warm connections just before each first call
  (``first_minus_warm_plus_raw_ms``, the median per council of first - warm - raw: <= 0 is
  the goal); Totalmobile and CSV councils answer addresses from a CSV file (no backend).
  The warm call is answered from the gateway's 15-second ``addresses`` cache; for the CSV
  kinds the bench also makes a warm call the cache cannot answer (``OTHER_POSTCODE``, never
  asked before: ``warm_uncached_ms``), so ``first_minus_warm_uncached_ms`` is what the lazy
  start itself adds, apart from the gateway's own uncached path.
- the same comparison *matched*: a process that has been idle runs its next work slower
  (plain httpx's replay included: about 1.5-2x on this VM), and the first call always
  comes after a quiet moment, while the warm calls and the hot replay run back to back. So
  each term is also measured once after the same ``PAUSE`` of quiet as the first call: a
  single raw replay, then the first call, then one warm call
  (``matched_first_minus_warm_plus_raw_ms``, <= 0 the goal);
- a UH + DRS council's first ``appointments`` call (right after its first addresses call:
  the DRS adaptor starts and opens its session) against a warm one plus the exchanges it
  needs (UH's property look-up, whose records the adaptor has cached: one list call; DRS's
  ``openSession``; the page's ``checkAvailability`` windows, at once), recorded from the
  adaptors and replayed raw in the rounds they were sent (``uh_drs_appointments_ms``:
  ``excess`` as above, ``m_excess`` matched). The DRS simulator runs without its default
  50 ms availability latency, so that latency hides nothing. The warm call's windows come
  from the DRS adaptor's slot cache (60 s).
- what the lazy start itself costs a UH + DRS council: the same two first calls made to
  another council of that kind which has already started (its adaptors by a search of
  another postcode and a page for a property there, so its DRS session is open) but was
  never asked them, after the same quiet (``uh_drs_started_uncached_ms``: ``addresses``,
  ``appointments``, and ``lazy_*``: first minus that, per pair). Its backends are called as
  for a first call (UH's list and records, DRS's windows: nothing of them cached), so
  the difference is the start alone: adaptor start, DRS ``openSession``, first use of the
  council's objects.

Baselines are in the same run: N = 1 for start-up and memory, the warm call and the raw
backend exchanges for first-call latency. Run: `.venv/bin/python -m bench.bench_platform`
(`--sizes 1,100` for a quick run). Figures go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import free_port, machine_info

REPO = Path(__file__).resolve().parent.parent
SOR = REPO / "mappings" / "examples" / "demo-sor.csv"
PROPERTIES = REPO / "deploy" / "config" / "demo-properties.csv"
SIMULATORS = {
    "uh": ("adaptors.civica_uh.simulator", ["--latency-ms", "0"]),
    # no latency of its own: the first appointments call's excess is not hidden in it
    "drs": ("adaptors.kirona_drs.simulator", ["--availability-latency", "0"]),
    "tm": ("adaptors.totalmobile.simulator", ["--latency-ms", "0"]),
}
POSTCODE = "LN1 1AA"
OTHER_POSTCODE = "LN2 1LT"  # in the same file; asked once per council, after the warm calls
START_POSTCODE = "LN2 4BB"  # in UH's data: starts a council's adaptors without POSTCODE
FIRST_CALLS = 12  # councils of each kind given a first call, per size
SOR_CODE = "N858111"  # light fitting: electrical, small, 60 minutes (demo-sor.csv)
PAUSE = 0.05  # s of quiet before each matched measurement (as before a first call)
SOAP_HEADERS = ("soapaction", "content-type")
SECRETS = {"UH_PASSWORD": "secret", "DRS_PASSWORD": "drs-secret", "TOTALMOBILE_SECRET": "s3cret"}


def log(msg: str) -> None:
    print(f"[platform] {msg}", file=sys.stderr, flush=True)


def start_simulators(tmp: Path) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
    ports, procs = {}, []
    for name, (module, extra) in SIMULATORS.items():
        port = free_port()
        ports[name] = port
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own simulator modules
                [sys.executable, "-m", module, "--port", str(port), *extra],
                stdout=subprocess.DEVNULL,
                stderr=(tmp / f"{name}.log").open("wb"),
                cwd=REPO,
            )
        )
    for _name, port in ports.items():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_sim/state", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    return ports, procs


def council(kind: str, ports: dict[str, int]) -> dict[str, Any]:
    csv = {
        "type": "csv_fallback",
        "options": {
            "properties_file": str(PROPERTIES),
            "calendar": {"capacity_per_trade": {"plumbing": 2, "electrical": 2, "carpentry": 2}},
        },
    }
    uh = {
        "type": "civica_uh",
        "options": {
            "property_wsdl": f"http://127.0.0.1:{ports['uh']}/PropertyService.svc?wsdl",
            "property_endpoint": f"http://127.0.0.1:{ports['uh']}/PropertyService.svc",
            "repair_endpoint": f"http://127.0.0.1:{ports['uh']}/RepairService.svc",
            "username": "gateway",
            "password": "${UH_PASSWORD}",
            "source_system": "REPAIRSGW",
            "user_id": 42,
        },
    }
    drs = {
        "type": "kirona_drs",
        "options": {
            "wsdl": f"http://127.0.0.1:{ports['drs']}/DRSService?wsdl",
            "endpoint": f"http://127.0.0.1:{ports['drs']}/DRSService",
            "login": "gateway",
            "password": "${DRS_PASSWORD}",
            "contract": "RESPONSIVE",
            "user_id": "REPAIRSGW",
        },
    }
    tm = {
        "type": "totalmobile",
        "options": {
            "base_url": f"http://127.0.0.1:{ports['tm']}",
            "client_id": "repairs-gateway",
            "client_secret": "${TOTALMOBILE_SECRET}",
            "world": "housing-repairs",
        },
    }
    body: dict[str, Any] = {"name": f"Generated council ({kind})", "mappings": str(SOR)}
    if kind == "uh+drs":
        body["adaptors"] = {"uh": uh, "drs": drs}
        body["routes"] = {"addresses": "uh", "appointments": "drs", "works_orders": "uh"}
    elif kind == "totalmobile":
        body["adaptors"] = {"props": csv, "tm": tm}
        body["routes"] = {"addresses": "props", "appointments": "tm"}
    else:
        body["adaptors"] = {"csv": csv}
        body["routes"] = {"addresses": "csv", "appointments": "csv"}
    return body


KINDS = ("uh+drs", "totalmobile", "csv")


def write_councils(config_dir: Path, n: int, ports: dict[str, int]) -> dict[str, str]:
    shutil.rmtree(config_dir, ignore_errors=True)
    config_dir.mkdir(parents=True)
    kinds = {}
    for i in range(n):
        kind = KINDS[i % 3]
        cid = f"c{i:04d}"
        kinds[cid] = kind
        (config_dir / f"{cid}.yaml").write_text(yaml.safe_dump(council(kind, ports)))
    return kinds


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


Rounds = list[list[tuple[str, dict[str, str], bytes]]]


def run_size(
    n: int,
    tmp: Path,
    ports: dict[str, int],
    rounds: Rounds,
    appointments: tuple[Rounds, str],
    replayer: Replayer,
) -> dict[str, Any]:
    appt_rounds, property_id = appointments
    config_dir, data_dir = tmp / f"config-{n}", tmp / f"data-{n}"
    shutil.rmtree(data_dir, ignore_errors=True)
    kinds = write_councils(config_dir, n, ports)
    env = {
        **os.environ,
        **SECRETS,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_SECRET_KEY": secrets.token_urlsafe(32),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    env.pop("DATABASE_URL", None)
    cli = [sys.executable, "-m", "gateway.cli"]
    key = (
        subprocess.run(  # noqa: S603
            [
                *cli,
                "keys",
                "create",
                "bench",
                "--council",
                "*",
                "--role",
                "admin",
                "--rate-per-minute",
                "100000000",
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603
        [*cli, "serve", "--config-dir", str(config_dir), "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"gw-{n}.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    live = ready = None
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
            while time.monotonic() - t0 < 600:
                try:
                    if live is None and c.get("/health/live", timeout=2).status_code == 200:
                        live = time.monotonic() - t0
                    if live is not None and c.get("/health/ready", timeout=5).status_code == 200:
                        ready = time.monotonic() - t0
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway exited: see {tmp / f'gw-{n}.log'}")
                time.sleep(0.05)
            rss_start = rss_mib(proc.pid)
            # up to FIRST_CALLS councils of each kind, spread over the whole range (the
            # first of each kind first: it is also the process's first call of its kind)
            by_kind = {k: [c for c in kinds if kinds[c] == k] for k in KINDS}
            spread = {
                k: v[:: max(1, len(v) // FIRST_CALLS)][:FIRST_CALLS] for k, v in by_kind.items()
            }
            sample = sorted((c for v in spread.values() for c in v), key=list(kinds).index)
            first: dict[str, list[float]] = {k: [] for k in KINDS}
            warm: dict[str, list[float]] = {k: [] for k in KINDS}
            raw: dict[str, list[float]] = {k: [] for k in KINDS}
            excess: dict[str, list[float]] = {k: [] for k in KINDS}
            uncached: dict[str, list[float]] = {k: [] for k in KINDS}
            start_only: dict[str, list[float]] = {k: [] for k in KINDS}
            # the same, each term measured once after the same quiet PAUSE as the first call
            # (a process that was idle runs its next work slower, plain httpx's included)
            m_warm: dict[str, list[float]] = {k: [] for k in KINDS}
            m_raw: dict[str, list[float]] = {k: [] for k in KINDS}
            m_excess: dict[str, list[float]] = {k: [] for k in KINDS}
            appt: dict[str, list[float]] = {
                k: [] for k in ("first", "warm", "raw", "excess", "m_warm", "m_raw", "m_excess")
            }
            # UH + DRS councils never sampled: each started by calls elsewhere, then asked
            # what a sampled council's first calls asked (see ``started_uncached``)
            companions = [z for z in by_kind["uh+drs"] if z not in sample]
            started: dict[str, list[float]] = {
                k: [] for k in ("addresses", "appointments", "lazy_addresses", "lazy_appointments")
            }

            def timed(url: str, **params: str) -> float:
                t = time.perf_counter()
                r = c.get(url, params=params, timeout=60)
                took = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, (url, r.status_code, r.text[:300])
                return took

            for cid in sample:
                kind = kinds[cid]
                url = f"/v1/councils/{cid}/addresses"
                needed = needed_once = 0.0
                if kind == "uh+drs":
                    # what this first call needs from its backend, measured just before it (the
                    # machine's load drifts): UH's exchanges replayed raw; none for a CSV file
                    needed = replayer.hot(rounds, times=5)
                    time.sleep(PAUSE)
                    needed_once = replayer.once(rounds)
                time.sleep(PAUSE)
                took = timed(url, postcode=POSTCODE)
                time.sleep(PAUSE)
                warm_once = timed(url, postcode=POSTCODE)
                warms = [timed(url, postcode=POSTCODE) for _ in range(10)]
                if kind != "uh+drs":  # a UH miss would be a backend call of its own
                    miss = timed(url, postcode=OTHER_POSTCODE)
                    uncached[kind].append(miss)
                    start_only[kind].append(took - miss)
                first[kind].append(took)
                warm[kind].extend(warms)
                raw[kind].append(needed)
                excess[kind].append(took - statistics.median(warms) - needed)
                m_warm[kind].append(warm_once)
                m_raw[kind].append(needed_once)
                m_excess[kind].append(took - warm_once - needed_once)
                if kind == "uh+drs":
                    # the first appointments call: it starts the DRS adaptor, opens its session,
                    # finds the property in UH (one list call: its records are cached by the
                    # adaptor) and asks DRS for the windows of a page
                    a_url = f"/v1/councils/{cid}/appointments"
                    query = {"property_id": property_id, "sor_code": SOR_CODE}
                    a_needed = replayer.hot(appt_rounds, times=5)
                    time.sleep(PAUSE)
                    a_needed_once = replayer.once(appt_rounds)
                    time.sleep(PAUSE)
                    a_took = timed(a_url, **query)
                    time.sleep(PAUSE)
                    a_warm_once = timed(a_url, **query)
                    a_warms = [timed(a_url, **query) for _ in range(10)]
                    appt["first"].append(a_took)
                    appt["warm"].extend(a_warms)
                    appt["raw"].append(a_needed)
                    appt["excess"].append(a_took - statistics.median(a_warms) - a_needed)
                    appt["m_warm"].append(a_warm_once)
                    appt["m_raw"].append(a_needed_once)
                    appt["m_excess"].append(a_took - a_warm_once - a_needed_once)
                    if companions:
                        z_addr, z_appt = started_uncached(timed, c, companions.pop(0), property_id)
                        started["addresses"].append(z_addr)
                        started["appointments"].append(z_appt)
                        started["lazy_addresses"].append(took - z_addr)
                        started["lazy_appointments"].append(a_took - z_appt)
            rss_after = rss_mib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "councils": n,
        "live_s": round(live or -1, 2),
        "ready_s": round(ready or -1, 2),
        "rss_start_mib": round(rss_start, 1),
        "rss_after_calls_mib": round(rss_after, 1),
        "first_ms": {k: round(statistics.median(v), 1) for k, v in first.items() if v},
        # the very first council of a kind (c0000 for UH + DRS): it may meet its WSDL unparsed
        "first_of_kind_ms": {k: round(v[0], 1) for k, v in first.items() if v},
        "warm_ms": {k: round(statistics.median(v), 2) for k, v in warm.items() if v},
        "raw_needed_ms": {k: round(statistics.median(v), 2) for k, v in raw.items() if v},
        # per council: first - (its warm call + the raw exchanges just before it); the goal <= 0
        "first_minus_warm_plus_raw_ms": {
            k: round(statistics.median(v), 1) for k, v in excess.items() if v
        },
        "warm_uncached_ms": {k: round(statistics.median(v), 2) for k, v in uncached.items() if v},
        "first_minus_warm_uncached_ms": {
            k: round(statistics.median(v), 1) for k, v in start_only.items() if v
        },
        # matched: the warm call and the raw exchanges each measured once after the same
        # PAUSE of quiet as the first call (medians of those single measurements)
        "matched_warm_ms": {k: round(statistics.median(v), 2) for k, v in m_warm.items() if v},
        "matched_raw_needed_ms": {k: round(statistics.median(v), 2) for k, v in m_raw.items() if v},
        "matched_first_minus_warm_plus_raw_ms": {
            k: round(statistics.median(v), 1) for k, v in m_excess.items() if v
        },
        # a UH + DRS council's first appointments call (DRS starts, opens its session)
        "uh_drs_appointments_ms": {k: round(statistics.median(v), 2) for k, v in appt.items() if v},
        # the same two calls to a council already started, never asked them before (its
        # backends called as for a first call), after the same quiet; lazy_*: first - that
        "uh_drs_started_uncached_ms": {
            k: round(statistics.median(v), 2) for k, v in started.items() if v
        },
    }


def started_uncached(
    timed: Any, c: httpx.Client, council_id: str, property_id: str
) -> tuple[float, float]:
    """A UH + DRS council's ``addresses`` (POSTCODE) and ``appointments`` (``property_id``)
    when the council has started already (its UH adaptor by a search of START_POSTCODE, its
    DRS adaptor and session by a page for a property there) but has never been asked these:
    the gateway's path with every answer to fetch from the backends (UH's list and records,
    DRS's windows), as a first call fetches them, without the start. Each after PAUSE."""
    url = f"/v1/councils/{council_id}"
    listing = c.get(f"{url}/addresses", params={"postcode": START_POSTCODE}, timeout=60).json()
    other = next(a["id"] for a in listing["addresses"] if a["online_repairs"])
    r = c.get(f"{url}/appointments", params={"property_id": other, "sor_code": SOR_CODE})
    assert r.status_code == 200, r.text[:300]
    time.sleep(PAUSE)
    addresses = timed(f"{url}/addresses", postcode=POSTCODE)
    time.sleep(PAUSE)
    appointments = timed(f"{url}/appointments", property_id=property_id, sor_code=SOR_CODE)
    return addresses, appointments


def uh_address_exchanges(port: int) -> Rounds:
    """The SOAP exchanges a UH + DRS council's first ``addresses`` call really needs, in the
    rounds the adaptor makes them: recorded from the Civica UH adaptor itself (in this
    process, on the same simulator), then grouped by what each depends on - the postcode
    list, then the listed properties' records (at once), then their parents' records."""
    import asyncio
    import logging

    import structlog

    from adaptors.civica_uh import CivicaUHAdaptor
    from adaptors.civica_uh.config import CivicaUHConfig
    from repairs_gateway_sdk.adaptor import AdaptorContext

    options = council("uh+drs", {"uh": port, "drs": 0, "tm": 0})["adaptors"]["uh"]["options"]
    options = {**options, "password": SECRETS["UH_PASSWORD"]}
    adaptor = CivicaUHAdaptor(
        CivicaUHConfig.model_validate(options),
        AdaptorContext(council="raw", name="uh", config_dir=REPO, data_dir=REPO),
    )
    # the adaptor's info lines would land in this bench's JSON on standard output
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sent: list[tuple[str, dict[str, str], bytes, bytes]] = []
    original = httpx.AsyncClient.send

    async def record(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        response = await original(self, request, **kw)
        await response.aread()
        keep = {k: v for k, v in request.headers.items() if k.lower() in SOAP_HEADERS}
        sent.append((str(request.url), keep, request.content, response.content))
        return response

    async def run() -> None:
        await adaptor.start()
        httpx.AsyncClient.send = record  # type: ignore[method-assign,assignment]
        try:
            await adaptor.addresses(POSTCODE)
        finally:
            httpx.AsyncClient.send = original  # type: ignore[method-assign]
            await adaptor.close()

    asyncio.run(run())
    listed = set(re.findall(rb"<(?:\w+:)?PropertyReference>([^<]+)<", sent[0][3]))

    def ref(body: bytes) -> bytes | None:
        found = re.search(rb"<(?:\w+:)?PropertyReference>([^<]+)<", body)
        return found.group(1) if found else None

    rounds = [[sent[0]], [x for x in sent[1:] if ref(x[2]) in listed]]
    rounds.append([x for x in sent[1:] if ref(x[2]) not in listed])
    return [[(u, h, b) for u, h, b, _ in r] for r in rounds if r]


def appointment_exchanges(ports: dict[str, int]) -> tuple[Rounds, str]:
    """The exchanges a UH + DRS council's first ``appointments`` call needs after its first
    ``addresses`` call, recorded from the adaptors themselves (in this process, on the same
    simulators, as the gateway makes them: UH's ``get_property``, then DRS's availability
    for the page), in rounds by when they were sent (a request sent before any reply of the
    round had come is in that round). Also the property asked about (the first one of
    ``POSTCODE`` that can be booked online). The DRS session is left open: its id is in the
    recorded requests that are replayed."""
    import asyncio
    import logging

    import structlog

    from adaptors.civica_uh import CivicaUHAdaptor
    from adaptors.civica_uh.config import CivicaUHConfig
    from adaptors.kirona_drs import KironaDRSAdaptor
    from adaptors.kirona_drs.config import KironaDRSConfig
    from mappings.engine import load_table
    from repairs_gateway_sdk.adaptor import AdaptorContext
    from repairs_gateway_sdk.model import AvailabilityQuery, JobSpec, Priority
    from repairs_gateway_sdk.timeutil import today_london

    body = council("uh+drs", ports)["adaptors"]
    uh_options = {**body["uh"]["options"], "password": SECRETS["UH_PASSWORD"]}
    drs_options = {**body["drs"]["options"], "password": SECRETS["DRS_PASSWORD"]}
    uh = CivicaUHAdaptor(
        CivicaUHConfig.model_validate(uh_options),
        AdaptorContext(council="raw", name="uh", config_dir=REPO, data_dir=REPO),
    )
    drs = KironaDRSAdaptor(
        KironaDRSConfig.model_validate(drs_options),
        AdaptorContext(council="raw", name="drs", config_dir=REPO, data_dir=REPO),
    )
    mapping = load_table(SOR).get(SOR_CODE)
    assert mapping is not None
    job = JobSpec(
        sor_code=mapping.code,
        trade=mapping.trade,
        size=mapping.size,
        duration_minutes=mapping.duration_minutes,
        priority=mapping.priority or Priority.NORMAL,
    )
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sent: list[tuple[float, float, str, dict[str, str], bytes]] = []
    original = httpx.AsyncClient.send

    async def record(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        began = time.perf_counter()
        response = await original(self, request, **kw)
        await response.aread()
        keep = {k: v for k, v in request.headers.items() if k.lower() in SOAP_HEADERS}
        sent.append((began, time.perf_counter(), str(request.url), keep, request.content))
        return response

    async def run() -> str:
        await uh.start()
        props = await uh.addresses(POSTCODE)  # as the council's first addresses call did
        prop = next(p for p in props if p.online_repairs)
        httpx.AsyncClient.send = record  # type: ignore[method-assign,assignment]
        try:
            found = await uh.get_property(prop.id)
            assert found is not None
            query = AvailabilityQuery(property=found, job=job, start_from=today_london())
            page = await drs.availability(query)
            assert page.slots, "the DRS simulator offered no slots"
        finally:
            httpx.AsyncClient.send = original  # type: ignore[method-assign]
            await uh.close()
            http = drs.client._http  # closed without closeSession: the replays use it
            if http is not None:
                await http.aclose()
        return prop.id

    property_id = asyncio.run(run())
    sent.sort()
    rounds: Rounds = []
    first_reply = 0.0
    for began, ended, url, headers, content in sent:
        if not rounds or began >= first_reply:
            rounds.append([])
            first_reply = ended
        first_reply = min(first_reply, ended)
        rounds[-1].append((url, headers, content))
    return rounds, property_id


class Replayer:
    """Exchanges replayed raw (plain httpx, no adaptor) on one client whose connections
    stay open between replays, as a shared pool's do: ``hot`` is the median of ``times``
    replays in a row (after 3 to warm up), ``once`` a single replay (after a pause, it is
    measured as the first call is)."""

    def __init__(self) -> None:
        import asyncio

        self._runner = asyncio.Runner()
        self._client = self._runner.run(self._open())

    @staticmethod
    async def _open() -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def _all(self, rounds: Rounds) -> float:
        import asyncio

        async def one(x: tuple[str, dict[str, str], bytes]) -> None:
            (await self._client.post(x[0], content=x[2], headers=x[1])).raise_for_status()

        t = time.perf_counter()
        for r in rounds:
            await asyncio.gather(*(one(x) for x in r))
        return (time.perf_counter() - t) * 1000

    def once(self, rounds: Rounds) -> float:
        return self._runner.run(self._all(rounds))

    def hot(self, rounds: Rounds, times: int = 30) -> float:
        async def run() -> float:
            for _ in range(3):
                await self._all(rounds)
            return statistics.median([await self._all(rounds) for _ in range(times)])

        return self._runner.run(run())

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


def replay(rounds: Rounds, times: int = 30) -> float:
    """The exchanges of ``rounds`` sent raw (plain httpx, no adaptor), each round at once,
    on warm connections: median ms."""
    import asyncio

    async def run() -> float:
        async with httpx.AsyncClient() as c:

            async def one(x: tuple[str, dict[str, str], bytes]) -> None:
                (await c.post(x[0], content=x[2], headers=x[1])).raise_for_status()

            async def all_rounds() -> None:
                for r in rounds:
                    await asyncio.gather(*(one(x) for x in r))

            for _ in range(3):
                await all_rounds()  # connections open, as a shared pool's are
            samples = []
            for _ in range(times):
                t = time.perf_counter()
                await all_rounds()
                samples.append((time.perf_counter() - t) * 1000)
            return statistics.median(samples)

    return asyncio.run(run())


def backend_round_trips(ports: dict[str, int], rounds: Rounds) -> dict[str, Any]:
    """A raw exchange with each simulator (its WSDL or token endpoint), median of 20; and
    the UH exchanges a first ``addresses`` call needs, replayed raw (``replay``)."""
    out: dict[str, Any] = {}
    urls = {
        "uh+drs": f"http://127.0.0.1:{ports['uh']}/PropertyService.svc?wsdl",
        "totalmobile": f"http://127.0.0.1:{ports['tm']}/_sim/state",
    }
    with httpx.Client() as c:
        for kind, url in urls.items():
            times = []
            for _ in range(20):
                t = time.perf_counter()
                c.get(url)
                times.append((time.perf_counter() - t) * 1000)
            out[kind] = round(statistics.median(times), 2)
    out["uh_addresses_exchanges"] = [len(r) for r in rounds]
    out["uh_addresses_replayed"] = round(replay(rounds), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1,100,400,1600")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-platform-"))
    ports, procs = start_simulators(tmp)
    try:
        rounds = uh_address_exchanges(ports["uh"])
        appointments = appointment_exchanges(ports)
        replayer = Replayer()
        try:
            results = [
                run_size(int(n), tmp, ports, rounds, appointments, replayer)
                for n in args.sizes.split(",")
            ]
        finally:
            replayer.close()
        raw = backend_round_trips(ports, rounds)
        raw["uh_drs_appointments_exchanges"] = [len(r) for r in appointments[0]]
    finally:
        for p in procs:
            p.terminate()
    base = results[0]
    for r in results:
        extra = r["councils"] - base["councils"]
        r["mib_per_council"] = (
            round((r["rss_start_mib"] - base["rss_start_mib"]) / extra, 3) if extra else None
        )
        r["ready_vs_1_council"] = round(r["ready_s"] / base["ready_s"], 2)
    print(
        json.dumps({"machine": machine_info(), "raw_backend_ms": raw, "results": results}, indent=2)
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

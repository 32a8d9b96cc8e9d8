"""The ``repairs-gateway`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from gateway.config import ConfigError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.outbox import OutboxWorker
    from gateway.runtime import Runtime

app = typer.Typer(
    help="Repairs gateway: one standard repairs API for councils.",
    no_args_is_help=True,
    add_completion=False,
)
mappings_app = typer.Typer(help="SoR mapping tables.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for front-ends and admins.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="The outbox of side effects (works orders, compensations).", no_args_is_help=True
)
export_app = typer.Typer(
    help="Exports for councils that process bookings by hand.", no_args_is_help=True
)
app.add_typer(mappings_app, name="mappings")
app.add_typer(keys_app, name="keys")
app.add_typer(outbox_app, name="outbox")
app.add_typer(export_app, name="export")
properties_app = typer.Typer(
    help="Property files of the CSV fallback (their postcode index).", no_args_is_help=True
)
app.add_typer(properties_app, name="properties")

ConfigDir = Annotated[Path, typer.Option("--config-dir", help="directory of council YAML files")]
DEMO_KEY = "rgw_demo_local-demo-key"
REPO = Path(__file__).resolve().parent.parent


def _settings(config_dir: Path | None = None) -> Settings:
    s = Settings()
    if config_dir is not None:
        s = s.model_copy(update={"config_dir": config_dir})
    return s


def _fail_config(exc: ConfigError) -> None:
    typer.echo("configuration problems:", err=True)
    for p in exc.problems:
        typer.echo(f"  {p}", err=True)
    raise typer.Exit(2)


class AnsweredErrorsStayQuiet:
    """Outermost ASGI wrapper for the server: an unexpected error has already been answered
    (problem+json 500) and logged by type and place; without this, the server would print its
    traceback, whose message can carry what a resident submitted. Start-up errors still
    propagate (lifespan scope)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:  # noqa: BLE001, S110 - answered and logged inside the app
            pass


EXIT_SCHEMA = 3  # the database is unreachable or not migrated (serve, worker)


def _refuse(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"repairs-gateway: {message}", err=True)
    raise typer.Exit(code)


def _check_secret(settings: Settings) -> None:
    problem = settings.secret_key_problem() or settings.unsafe_setting_problem()
    if problem is not None:
        _refuse(problem)


def _wait_for_schema(settings: Settings) -> None:
    """On PostgreSQL, `serve` and `worker` never migrate: the schema is `repairs-gateway
    migrate`'s job (run once per release, e.g. by a Job or init container). Wait up to
    ``schema_wait_seconds`` for it, then refuse. SQLite (one process) migrates at start."""
    if not settings.uses_postgres():
        return
    from gateway.storage.database import schema_state

    url = settings.resolved_database_url()
    deadline = time.monotonic() + settings.schema_wait_seconds
    said_waiting = False
    while True:
        try:
            state = schema_state(url)
        except Exception as exc:  # noqa: BLE001 - reported by type below, retried until the deadline
            why, hint = f"cannot reach the database ({type(exc).__name__})", "check DATABASE_URL"
        else:
            if state.state == "ahead":
                typer.echo(
                    f"repairs-gateway: {state.describe()}: a newer release migrated it; "
                    "serving anyway (migrations are additive)",
                    err=True,
                )
            if state.usable:
                return
            why, hint = state.describe(), "run `repairs-gateway migrate` first"
        left = deadline - time.monotonic()
        if left <= 0:
            _refuse(
                f"{why}: {hint} (waited {settings.schema_wait_seconds:g}s, "
                "GATEWAY_SCHEMA_WAIT_SECONDS)",
                EXIT_SCHEMA,
            )
        if not said_waiting:
            typer.echo(f"repairs-gateway: {why}; waiting up to {left:.0f}s", err=True)
            said_waiting = True
        time.sleep(min(2.0, left))


def _runtime(settings: Settings, *, run_worker: bool) -> Runtime:
    """Checks first (signing key, schema), then the runtime. Every process flushes the call
    statistics it records; only SQLite migrates at start."""
    from gateway.runtime import Runtime

    _check_secret(settings)
    _wait_for_schema(settings)
    try:
        runtime = Runtime(
            settings,
            run_worker=run_worker,
            migrate=not settings.uses_postgres(),
            periodic_flush=True,
        )
        runtime.reloader.on_sighup = True  # SIGHUP: council files again (gateway/reload.py)
        return runtime
    except ConfigError as exc:
        _fail_config(exc)
        raise  # unreachable: _fail_config exits


def _start_metrics_port(settings: Settings) -> None:
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)


def _serve(
    settings: Settings,
    host: str,
    port: int,
    banner: str | None = None,
    *,
    worker: bool = True,
) -> None:
    import uvicorn

    from gateway.api.app import create_app
    from gateway.http_server import OneWriteH11Protocol
    from gateway.logging import configure

    configure(settings.log_level)
    runtime = _runtime(settings, run_worker=worker)
    try:
        application = create_app(settings, runtime=runtime)
    except ConfigError as exc:
        _fail_config(exc)
        return
    _start_metrics_port(settings)
    if banner:
        typer.echo(banner)
    uvicorn.run(
        AnsweredErrorsStayQuiet(application),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=OneWriteH11Protocol,  # an answer's head and body in one write
    )


@app.command()
def serve(
    config_dir: ConfigDir = Path("deploy/config"),
    host: str = "127.0.0.1",
    port: int = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="also deliver the outbox in this process (--no-worker: requests only; "
            "run `repairs-gateway worker` separately)",
        ),
    ] = True,
) -> None:
    """Start the gateway for every council in CONFIG_DIR. On PostgreSQL the schema must have
    been migrated (`repairs-gateway migrate`); serve waits GATEWAY_SCHEMA_WAIT_SECONDS for it."""
    _serve(_settings(config_dir), host, port, worker=worker)


@app.command()
def worker(config_dir: ConfigDir = Path("deploy/config")) -> None:
    """Deliver the outbox (works orders, compensations, notifications, crash reconciliation)
    and flush call statistics, without serving HTTP. Any number may run on one PostgreSQL
    database (items are claimed one at a time). Stops cleanly on SIGTERM or Ctrl-C: the
    batch in hand is finished (up to GATEWAY_SHUTDOWN_GRACE_SECONDS)."""
    from gateway.logging import configure

    settings = _settings(config_dir)
    configure(settings.log_level)
    runtime = _runtime(settings, run_worker=False)
    _start_metrics_port(settings)
    asyncio.run(_run_worker(runtime, settings.shutdown_grace_seconds))


async def _deliver_until(worker: OutboxWorker, stop: asyncio.Event) -> None:
    import structlog

    log = structlog.get_logger("gateway.worker")
    while not stop.is_set():
        try:
            attempted = await worker.run_once()
        except Exception as exc:  # noqa: BLE001 - the worker must survive a database hiccup
            log.error("outbox.loop_error", error_type=type(exc).__name__)
            attempted = 0
        if attempted == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), worker.poll_seconds)


async def _run_worker(runtime: Runtime, grace_seconds: float) -> None:
    import structlog

    log = structlog.get_logger("gateway.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    log.info("worker.started", worker_id=runtime.worker.worker_id)
    delivering = asyncio.create_task(_deliver_until(runtime.worker, stop))
    try:
        await stop.wait()
        log.info("worker.stopping")
        try:
            await asyncio.wait_for(delivering, grace_seconds)
        except TimeoutError:
            # the items in hand stay claimed until their lock expires, then are retried
            log.warning("worker.stopped_mid_delivery", grace_seconds=grace_seconds)
    finally:
        delivering.cancel()
        await runtime.stop()
        log.info("worker.stopped")


@app.command("migrate")
def migrate_cmd() -> None:
    """Bring the database schema to this version (Alembic), then exit. On PostgreSQL it holds
    an advisory lock, so several runs at once are safe (one migrates, the others wait)."""
    from gateway.logging import configure
    from gateway.storage.database import migrate, schema_state

    settings = Settings()
    configure(settings.log_level)
    url = settings.resolved_database_url()
    try:
        migrate(url)
        state = schema_state(url)
    except Exception as exc:  # noqa: BLE001 - reported to the operator, exit non-zero
        _refuse(f"migration failed: {type(exc).__name__}: {exc}", 1)
    if state.state != "current":
        _refuse(f"after migrating, {state.describe()}", 1)
    typer.echo(f"database schema is current ({', '.join(state.database)})")


SIMULATORS = [  # (module, port, extra args); ports match deploy/simulated/lincoln.yaml
    ("adaptors.civica_uh.simulator", 8101, ["--latency-ms", "40"]),
    ("adaptors.kirona_drs.simulator", 8102, ["--availability-latency", "1,2"]),
    ("adaptors.totalmobile.simulator", 8103, ["--latency-ms", "60"]),
]
SIMULATOR_SECRETS = {
    "UH_PASSWORD": "secret",
    "DRS_PASSWORD": "drs-secret",
    "TOTALMOBILE_SECRET": "s3cret",
    "HRO_IDENTIFIER": "lincoln-hro-demo-identifier",  # lincoln's HRO facade (N&S front end)
}


def _start_simulators() -> list[subprocess.Popen[bytes]]:
    import httpx

    procs = [
        subprocess.Popen(  # noqa: S603 - our own simulator modules, fixed arguments
            [sys.executable, "-m", module, "--port", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for module, port, extra in SIMULATORS
    ]
    deadline = time.monotonic() + 30
    for _module, port, _ in SIMULATORS:
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_sim/state", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    return procs


@app.command()
def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    with_simulators: Annotated[
        bool,
        typer.Option(help="also serve council 'lincoln' on the UH, DRS and Totalmobile simulators"),
    ] = False,
) -> None:
    """Start the demo council (CSV fallback, SQLite under ./data) with a local demo API key."""
    config = REPO / "deploy" / ("simulated" if with_simulators else "config")
    # The demo's publicly known admin key goes only into the demo's own SQLite database,
    # never into whatever DATABASE_URL points at.
    if os.environ.get("DATABASE_URL"):
        typer.echo(
            "repairs-gateway demo: ignoring DATABASE_URL; the demo keeps its own SQLite "
            "database under ./data",
            err=True,
        )
    settings = _settings(config).model_copy(update={"demo": True, "database_url": None})
    procs: list[subprocess.Popen[bytes]] = []
    if with_simulators:
        os.environ.update({k: os.environ.get(k, v) for k, v in SIMULATOR_SECRETS.items()})
        procs = _start_simulators()
    try:
        _demo(settings, host, port, with_simulators)
    finally:
        for proc in procs:
            proc.terminate()


def _demo(settings: Settings, host: str, port: int, with_simulators: bool) -> None:
    asyncio.run(_ensure_demo_key(settings, ["demo", "lincoln"] if with_simulators else ["demo"]))
    from gateway.sandbox import SANDBOX_KEY, ensure_sandbox_key

    sandboxes = ["sandbox"] if (settings.config_dir / "sandbox.yaml").is_file() else []
    if sandboxes:  # the sandbox council and its test key (adaptors/sandbox/README.md)
        asyncio.run(ensure_sandbox_key(settings, sandboxes))
    _serve(
        settings,
        host,
        port,
        banner=(
            f"Repairs gateway demo on http://{host}:{port}  (docs: http://{host}:{port}/docs)\n"
            f"Demo API key (local only): {DEMO_KEY}\n"
            + (f"Sandbox test key (council 'sandbox' only): {SANDBOX_KEY}\n" if sandboxes else "")
            + f"Try: curl -H 'Authorization: Bearer {DEMO_KEY}' "
            f"'http://{host}:{port}/v1/councils/demo/addresses?postcode=LN1%201AA'"
        ),
    )


async def _ensure_demo_key(settings: Settings, councils: list[str]) -> None:
    from gateway.auth import KeyStore
    from gateway.storage.database import Database

    db = Database(settings.resolved_database_url())
    await asyncio.to_thread(db.migrate)
    store = KeyStore(db)
    existing = {k.key_id: k for k in await store.list()}
    if "demo" in existing and sorted(existing["demo"].councils) != sorted(councils):
        await store.revoke("demo")
        await store.purge("demo")
        existing.pop("demo")
    if "demo" not in existing:
        await store.create("demo", councils, "admin", key_id="demo", secret="local-demo-key")
    await db.dispose()


@app.command()
def check(
    config_dir: ConfigDir = Path("deploy/config"),
    connect: Annotated[
        bool,
        typer.Option(
            "--connect",
            help="also reach each backend with a harmless call (start: credentials, WSDL, "
            "session; then a read) and print a table of results",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="--connect: seconds allowed per adaptor", min=0.1)
    ] = 15.0,
) -> None:
    """Validate every council's configuration, the files it names (mapping tables, property
    files, WSDLs) and, with --connect, each backend; exit 1 on any problem (warnings are
    shown but do not fail the check)."""
    from gateway.checks import check_councils, connect_all, render_table
    from gateway.plugins import discover

    settings = _settings(config_dir)
    checks, general = check_councils(config_dir, settings.data_dir)
    for name, why in sorted(discover().errors.items()):
        typer.echo(f"plugin {name}: failed to load: {why} (warning)")
    problems = general + [p for c in checks for p in c.problems]
    for p in problems:
        typer.echo(str(p))
    for c in checks:
        for scan in c.scans:
            typer.echo(f"{c.id}: {scan.summary()}")
        typer.echo(c.summary())
    fatal = [p for p in problems if p.fatal]
    failed_connects = 0
    if connect:
        councils = [c.council for c in checks if c.council is not None and not c.fatal]
        skipped = [c.id for c in checks if c.council is None or c.fatal]
        if skipped:
            typer.echo(f"not connecting {', '.join(skipped)}: fix the problems above first")
        total = sum(len(c.adaptors) for c in councils)
        typer.echo(f"connecting to {total} backend(s) (up to {timeout:g} s each)...", err=True)

        def progress(done: int, of: int, r: Any) -> None:
            word = "ok" if r.ok else f"FAILED: {r.reason}"
            typer.echo(f"  [{done}/{of}] {r.council}:{r.adaptor} {word} ({r.ms:.0f} ms)", err=True)

        results = asyncio.run(connect_all(councils, timeout, progress)) if councils else []
        if results:
            typer.echo(render_table(results))
        failed_connects = sum(1 for r in results if not r.ok)
    if fatal or failed_connects:
        parts = [f"{len(fatal)} problem(s) found"] if fatal else []
        if failed_connects:
            parts.append(f"{failed_connects} backend(s) could not be reached")
        typer.echo("; ".join(parts), err=True)
        raise typer.Exit(1)
    warned = len(problems) - len(fatal)
    typer.echo(
        "configuration is valid"
        + (f" ({warned} warning(s))" if warned else "")
        + ("; every backend answered" if connect and not failed_connects else "")
    )


@mappings_app.command("validate")
def mappings_validate(file: Path) -> None:
    """Check an SoR mapping table; prints each problem with its line number. UTF-8 (with or
    without BOM), UTF-16 and Windows-1252 files are read."""
    from gateway.textfiles import TextFileError, read_text
    from mappings.engine import parse_table

    try:
        decoded = read_text(file)
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    except TextFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    table, errors = parse_table(decoded.text, source=str(file))
    for e in errors:
        typer.echo(str(e))
    if errors:
        typer.echo(f"{len(errors)} problem(s) found", err=True)
        raise typer.Exit(1)
    note = f" ({decoded.note})" if decoded.note else ""
    typer.echo(f"{file}: {len(table)} codes, valid{note}")


def _db() -> tuple[Settings, object]:
    from gateway.storage.database import Database

    settings = Settings()
    db = Database(settings.resolved_database_url())
    db.migrate()
    return settings, db


def _known_councils(config_dir: Path | None) -> tuple[Path, list[str]]:
    from gateway.config import council_files

    directory = config_dir or Settings().config_dir
    try:
        return directory, sorted(p.stem for p in council_files(directory))
    except ConfigError:
        _refuse(f"config directory {directory} not found (give --config-dir)")


KeysConfigDir = Annotated[
    Path | None,
    typer.Option(
        "--config-dir", help="council YAML files, to check council ids (GATEWAY_CONFIG_DIR)"
    ),
]


def _audit_cli(action: str, council: str | None, reference: str | None, **detail: Any) -> None:
    """Admin actions from the command line are audited like those over HTTP (actor: cli)."""
    from gateway import audit

    async def run() -> None:
        _, db = _db()
        try:
            await audit.record(
                db,  # type: ignore[arg-type]
                action,
                key_id=None,
                council=council,
                reference=reference,
                log_it=False,
                via="cli",
                **detail,
            )
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    asyncio.run(run())


@keys_app.command("create")
def keys_create(
    name: str,
    council: Annotated[list[str], typer.Option(help="repeatable; '*' for every council")],
    role: str = "frontend",
    rate_per_minute: int = 600,
    expires_in_days: Annotated[
        int | None, typer.Option(help="refused after this many days (default: never)")
    ] = None,
    config_dir: KeysConfigDir = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from datetime import timedelta

    from gateway.auth import ROLES, KeyStore
    from repairs_gateway_sdk.timeutil import now

    if not name.strip():
        _refuse("give the key a name (who uses it)")
    if role not in ROLES:
        _refuse(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    if rate_per_minute < 1:
        _refuse(f"--rate-per-minute must be at least 1 (got {rate_per_minute})")
    if expires_in_days is not None and expires_in_days < 1:
        _refuse(f"--expires-in-days must be at least 1 (got {expires_in_days})")
    directory, known = _known_councils(config_dir)
    unknown = [c for c in council if c != "*" and c not in known]
    if unknown:
        _refuse(
            f"no council {', '.join(map(repr, unknown))} in {directory} "
            f"(councils: {', '.join(known) or 'none'}; '*' for all)"
        )
    expires = now() + timedelta(days=expires_in_days) if expires_in_days else None

    async def run() -> str:
        _, db = _db()
        try:
            return await KeyStore(db).create(  # type: ignore[arg-type]
                name, council, role, rate_per_minute, expires_at=expires
            )
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    try:
        key = asyncio.run(run())
    except ValueError as exc:
        _refuse(str(exc), 1)
    _audit_cli("keys.create", ",".join(council), key.split("_", 2)[1], role=role)
    typer.echo(key)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    overlap_days: Annotated[
        float, typer.Option(help="how long the old key keeps working alongside the new one")
    ] = 7,
) -> None:
    """A second key for the same client (same name, councils, role and rate); the old key
    keeps working for --overlap-days, then is refused. Prints the new key once."""
    from datetime import timedelta

    from gateway.auth import KeyStore
    from repairs_gateway_sdk.timeutil import london

    if overlap_days < 0:
        _refuse(f"--overlap-days cannot be negative (got {overlap_days:g})")

    async def run() -> tuple[str, Any]:
        _, db = _db()
        try:
            return await KeyStore(db).rotate(key_id, timedelta(days=overlap_days))  # type: ignore[arg-type]
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    try:
        key, old = asyncio.run(run())
    except ValueError as exc:
        _refuse(str(exc), 1)
    _audit_cli("keys.rotate", ",".join(old.councils), key_id, new_key=key.split("_", 2)[1])
    typer.echo(key)
    typer.echo(
        f"{key_id} keeps working until {london(old.expires_at).isoformat(timespec='minutes')}",
        err=True,
    )


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, councils, roles, state, expiry, last use; never the keys)."""
    from gateway.auth import KeyStore, key_state
    from repairs_gateway_sdk.timeutil import london

    def when(t: Any) -> str:
        return london(t).isoformat(timespec="minutes") if t else "-"

    async def run() -> None:
        _, db = _db()
        for k in await KeyStore(db).list():  # type: ignore[arg-type]
            typer.echo(
                "\t".join(
                    [
                        k.key_id,
                        k.name,
                        ",".join(k.councils),
                        k.role,
                        key_state(k),
                        f"expires={when(k.expires_at)}",
                        f"last_used={when(k.last_used_at)}",
                        *([f"replaces={k.replaces}"] if k.replaces else []),
                    ]
                )
            )
        await db.dispose()  # type: ignore[attr-defined]

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (takes effect within 15 seconds on running gateways)."""
    from gateway.auth import KeyStore

    async def run() -> bool:
        _, db = _db()
        try:
            return await KeyStore(db).revoke(key_id)  # type: ignore[arg-type]
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    if not asyncio.run(run()):
        typer.echo(f"no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    _audit_cli("keys.revoke", None, key_id)
    typer.echo(f"revoked {key_id}")


def _outbox_state(state: str | None) -> None:
    from gateway.outbox import STATES

    if state is not None and state not in STATES:
        _refuse(f"unknown state {state!r} (one of: {', '.join(STATES)})")


@outbox_app.command("list")
def outbox_list(
    state: Annotated[
        str | None, typer.Option(help="pending|retrying|done|dead|dropped (default: all)")
    ] = None,
    limit: int = 50,
    council: Annotated[str | None, typer.Option(help="only this council's items")] = None,
) -> None:
    """Outbox items, newest first (no personal data: kinds, references, errors)."""
    from gateway.outbox import list_items

    _outbox_state(state)
    if limit < 1:
        _refuse(f"--limit must be at least 1 (got {limit})")

    async def run() -> int:
        _, db = _db()
        items = await list_items(db, state, limit, council=council)  # type: ignore[arg-type]
        for i in items:
            typer.echo(
                json.dumps(
                    {
                        "id": i.id,
                        "council": i.council,
                        "kind": i.kind,
                        "reference": i.payload.get("reference"),
                        "state": i.state,
                        "attempts": i.attempts,
                        "last_error": i.last_error,
                    }
                )
            )
        await db.dispose()  # type: ignore[attr-defined]
        return len(items)

    shown = asyncio.run(run())
    typer.echo(f"{shown} item(s)" + (f" {state}" if state else ""), err=True)


def _outbox_action(action: str, item_ids: list[int] | None, council: str | None) -> int:
    from gateway.outbox import drop, replay

    async def run() -> int:
        _, db = _db()
        try:
            if action == "replay":
                return await replay(db, item_ids, council=council)  # type: ignore[arg-type]
            return await drop(db, item_ids or [], council=council)  # type: ignore[arg-type]
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    count = asyncio.run(run())
    _audit_cli(
        f"outbox.{action}",
        council,
        ",".join(map(str, item_ids))[:64] if item_ids else "all-dead",
        count=count,
    )
    return count


@outbox_app.command("replay")
def outbox_replay(
    item_id: Annotated[list[int] | None, typer.Argument()] = None,
    council: Annotated[str | None, typer.Option(help="only this council's items")] = None,
) -> None:
    """Put dead items back in the queue (all of them, or the ids given)."""
    count = _outbox_action("replay", item_id, council)
    typer.echo(f"{count} item(s) queued again")
    if item_id and count < len(set(item_id)):
        _refuse(f"{len(set(item_id)) - count} of the ids given are not dead items", 1)


@outbox_app.command("drop")
def outbox_drop(
    item_id: Annotated[list[int], typer.Argument(help="ids of dead items")],
    council: Annotated[str | None, typer.Option(help="only this council's items")] = None,
) -> None:
    """Give up on dead items for good (marked dropped, kept for the record)."""
    count = _outbox_action("drop", item_id, council)
    typer.echo(f"{count} item(s) dropped")
    if count < len(set(item_id)):
        _refuse(f"{len(set(item_id)) - count} of the ids given are not dead items", 1)


@export_app.command("bookings")
def export_bookings(
    council: str, status: str = "booked", config_dir: ConfigDir = Path("deploy/config")
) -> None:
    """Write a council's bookings as CSV to standard output (for processing by hand). Cells
    are safe to open in a spreadsheet: see ``gateway.export.spreadsheet_safe``."""
    from sqlalchemy import select

    from gateway.config import council_files
    from gateway.export import spreadsheet_safe
    from gateway.storage.models import Repair
    from repairs_gateway_sdk.model import RepairStatus
    from repairs_gateway_sdk.timeutil import london

    known = sorted(p.stem for p in council_files(config_dir))
    if council not in known:
        _refuse(f"no council {council!r} in {config_dir} (councils: {', '.join(known) or 'none'})")
    statuses = sorted({s.value for s in RepairStatus} | {"all"})
    if status not in statuses:
        _refuse(f"unknown status {status!r} (one of: {', '.join(statuses)})")

    class SafeWriter:
        def __init__(self) -> None:
            self.writer = csv.writer(sys.stdout)

        def writerow(self, row: list[object]) -> None:
            self.writer.writerow([spreadsheet_safe(v) for v in row])

    async def run() -> None:
        from sqlalchemy import func

        from gateway.progress import Progress

        _, db = _db()
        out = SafeWriter()
        out.writerow(
            [
                "reference",
                "status",
                "property_id",
                "sor_code",
                "trade",
                "priority",
                "appointment_start",
                "appointment_end",
                "communal",
                "description",
                "contact_name",
                "contact_phone",
                "contact_email",
                "created_at",
            ]
        )
        async with db.session() as s:  # type: ignore[attr-defined]
            q = select(Repair).where(Repair.council == council).order_by(Repair.created_at)
            if status != "all":
                q = q.where(Repair.status == status)
            total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar()
            progress = Progress(f"export {council}", verb="written", total=int(total or 0))
            for r in (await s.execute(q)).scalars():
                progress.imported()
                c = r.contact or {}
                out.writerow(
                    [
                        r.reference,
                        r.status,
                        r.property_id,
                        r.sor_code or "",
                        r.trade,
                        r.priority,
                        london(r.slot_start).isoformat() if r.slot_start else "",
                        london(r.slot_end).isoformat() if r.slot_end else "",
                        r.communal,
                        r.description,
                        c.get("name", ""),
                        c.get("phone", ""),
                        c.get("email", ""),
                        london(r.created_at).isoformat(),
                    ]
                )
        sys.stdout.flush()
        progress.finish()  # standard error: the CSV on standard output stays clean
        await db.dispose()  # type: ignore[attr-defined]

    asyncio.run(run())


@properties_app.command("import")
def properties_import(
    config_dir: ConfigDir = Path("deploy/config"),
    council: Annotated[
        list[str] | None, typer.Option(help="only this council (repeatable; default: all)")
    ] = None,
    force: Annotated[bool, typer.Option(help="rebuild indexes that are current too")] = False,
) -> None:
    """Import each CSV fallback property file into its postcode index now, before serving
    (otherwise the first start does it). Shows progress on a terminal and one summary line
    per file otherwise: rows read, imported, skipped by reason. Exit 1 if any file fails."""
    from gateway.property_import import import_properties

    settings = _settings(config_dir)
    try:
        failures = import_properties(
            config_dir, settings.data_dir, council, force=force, out=sys.stderr
        )
    except ConfigError as exc:
        _fail_config(exc)
    if failures:
        raise typer.Exit(1)


report_app = typer.Typer(help="Reports for council IT.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("migration")
def report_migration(
    council: Annotated[str, typer.Option(help="council id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Share of calls per adaptor, error rates, latency and shadow agreement per capability."""
    from gateway.report import migration_report, render_text

    async def run() -> dict[str, object]:
        _, db = _db()
        try:
            return await migration_report(db, council)  # type: ignore[arg-type]
        finally:
            await db.dispose()  # type: ignore[attr-defined]

    report = asyncio.run(run())
    typer.echo(json.dumps(report, indent=2) if as_json else render_text(report))


@app.command("new-adaptor")
def new_adaptor_cmd(
    name: str,
    dest: Annotated[Path, typer.Option(help="parent directory")] = Path("."),
    force: bool = False,
    kind: Annotated[
        str, typer.Option(help="hms (addresses + works orders), scheduler, or both")
    ] = "hms",
) -> None:
    """Write a working adaptor package (parts, simulator, README, contract config and test)."""
    from gateway.scaffold import ScaffoldError, new_adaptor, next_steps

    try:
        written = new_adaptor(name, dest, kind=kind, force=force)
    except ScaffoldError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(str(path))
    typer.echo(next_steps(name, dest))


# -- Housing Repairs Online: triage tables and the facade (gateway/hro/) --------------------
triage_app = typer.Typer(
    help="Triage tables: a council's repair questions, leading to SoR codes.", no_args_is_help=True
)
hro_app = typer.Typer(
    help="The Housing Repairs Online facade (/hro/{council}).", no_args_is_help=True
)
app.add_typer(triage_app, name="triage")
app.add_typer(hro_app, name="hro")


@triage_app.command("validate")
def triage_validate(
    file: Path,
    sor: Annotated[
        Path | None, typer.Option("--sor", help="the council's SoR table: every code must be in it")
    ] = None,
) -> None:
    """Check a triage table; prints each problem with its line number."""
    from mappings.engine import MappingTableError, load_table
    from mappings.triage import parse_triage

    table = None
    try:
        if sor is not None:
            table = load_table(sor)
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        typer.echo(f"{exc.filename}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    except MappingTableError as exc:
        typer.echo(str(exc))
        raise typer.Exit(1) from None
    triage, errors = parse_triage(text, str(file), table)
    for e in errors:
        typer.echo(str(e))
    if errors:
        typer.echo(f"{len(errors)} problem(s) found", err=True)
        raise typer.Exit(1)
    counts = ", ".join(
        f"{t}: {sum(1 for _ in tree.leaves())} answers" for t, tree in triage.trees.items()
    )
    typer.echo(f"{file}: valid ({counts})")


@triage_app.command("import")
def triage_import(
    tenant: Annotated[
        Path | None,
        typer.Option(help="Redbridge SoRConfig.json, or N&S SOR_CONFIGURATION_TENANT (JSON)"),
    ] = None,
    communal: Annotated[
        Path | None, typer.Option(help="N&S SOR_CONFIGURATION_COMMUNAL (JSON)")
    ] = None,
    leasehold: Annotated[
        Path | None, typer.Option(help="N&S SOR_CONFIGURATION_LEASEHOLD (JSON)")
    ] = None,
    sor: Annotated[
        Path | None, typer.Option("--sor", help="check every code against this SoR table")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here (default: stdout)")
    ] = None,
) -> None:
    """Import a Housing Repairs Online triage configuration as a gateway triage table.

    Each file is told apart by its JSON: an object is Redbridge's nested SoRConfig.json
    (display texts made from the values: edit them), an array is an N&S SOR_CONFIGURATION_*
    value. The result is validated like any triage table before it is written."""
    from mappings.engine import MappingTableError, load_table
    from mappings.triage import ImportError_, dump_triage, import_any, parse_triage

    given = {"tenant": tenant, "communal": communal, "leasehold": leasehold}
    if not any(given.values()):
        typer.echo("give at least one of --tenant, --communal, --leasehold", err=True)
        raise typer.Exit(2)
    trees: dict[str, list[dict[str, object]]] = {}
    failed = False
    for name, path in given.items():
        if path is None:
            continue
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
            trees[name], warnings = import_any(raw)
        except OSError as exc:
            typer.echo(f"{path}: cannot read: {exc.strerror}", err=True)
            raise typer.Exit(1) from None
        except json.JSONDecodeError as exc:
            typer.echo(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}", err=True)
            failed = True
            continue
        except ImportError_ as exc:
            for problem in exc.problems:
                typer.echo(f"{path}: {problem}", err=True)
            failed = True
            continue
        for w in warnings:
            typer.echo(f"{path}: {w} (warning)", err=True)
    if failed:
        raise typer.Exit(1)
    text = dump_triage(trees)
    try:
        table = load_table(sor) if sor is not None else None
    except (OSError, MappingTableError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _, errors = parse_triage(text, str(output or "<import>"), table)
    for e in errors:
        typer.echo(str(e), err=True)
    if errors:
        typer.echo(f"{len(errors)} problem(s) found; nothing written", err=True)
        raise typer.Exit(1)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{output}: {', '.join(trees)} written", err=True)


@hro_app.command("hash-identifier")
def hro_hash_identifier() -> None:
    """Read an N&S identifier (REPAIRS_API_IDENTIFIER) from stdin and print what to put in
    ``hro.identifier`` instead of it (sha256:...), so the clear value is never at rest."""
    from gateway.hro.config import hash_identifier

    value = sys.stdin.readline().strip()
    if not value:
        typer.echo("give the identifier on stdin", err=True)
        raise typer.Exit(2)
    typer.echo(hash_identifier(value))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The database handle: async engine and sessions for the app, sync URL for Alembic.

SQLite (default, under the data folder) and PostgreSQL (``DATABASE_URL``) are both first
class: the same code and migrations run on each and the storage tests run against both.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def async_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


# pg_advisory_lock key held while migrating: any number of `migrate` runs (replicas, jobs,
# init containers) may start at once; one migrates, the others wait and then find it done.
MIGRATION_LOCK_KEY = 0x7267_775F_6D69_6772  # "rgw_migr"
log = logging.getLogger("gateway.storage")


def _alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() in ("postgresql", "postgres")


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent). On PostgreSQL this holds a
    session advisory lock for the whole upgrade, so concurrent runs are serialised (without
    it, two runs on a fresh database both create ``alembic_version`` and one fails with a
    unique violation). The lock goes with the session if the process dies."""
    cfg = _alembic_config(url)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not is_postgres(url):
        command.upgrade(cfg, revision)
        return
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
            ).scalar()
            if not got:
                log.warning("another migration is running; waiting for it to finish")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                command.upgrade(cfg, revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


@lru_cache(maxsize=1)
def _script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(heads, every known revision) of this code's migrations."""
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    known = frozenset(r.revision for r in script.walk_revisions())
    return frozenset(script.get_heads()), known


@dataclass(frozen=True)
class SchemaState:
    """Where the database schema stands against this code's migrations.

    ``current``: at head. ``behind``: empty or at an older revision (run ``migrate``).
    ``ahead``: at a revision this code does not know, i.e. a newer release migrated it (a
    rolling upgrade: migrations are additive, so an older replica keeps serving)."""

    state: Literal["current", "behind", "ahead"]
    database: tuple[str, ...]
    code: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return self.state != "behind"

    def describe(self) -> str:
        at = ", ".join(self.database) or "empty (never migrated)"
        return f"database schema at {at}; this version needs {', '.join(self.code)}"


def _schema_state(conn: Connection) -> SchemaState:
    heads, known = _script_revisions()
    current = frozenset(MigrationContext.configure(conn).get_current_heads())
    state: Literal["current", "behind", "ahead"]
    if current == heads:
        state = "current"
    elif current and not current <= known:
        state = "ahead"
    else:
        state = "behind"
    return SchemaState(state, tuple(sorted(current)), tuple(sorted(heads)))


def schema_state(url: str) -> SchemaState:
    """The schema state, read with a short-lived sync connection (CLI, before serving)."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return _schema_state(conn)
    finally:
        engine.dispose()


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            db_path = make_url(url).database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            # used from the event loop's thread too (run_here), one caller at a time
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            from gateway.storage.sqlite_driver import dbapi

            kwargs["module"] = dbapi()  # one thread hop per statement (sqlite_driver.py)
        else:
            # no pool_pre_ping (a round trip on every checkout): a connection is pinged only
            # when it comes out of the pool after sitting idle (``_ping_if_idle``); the pool
            # hands out the connection used last (LIFO), so at a few requests a second one
            # connection stays warm instead of all of them taking turns and each going idle
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True)
        # hide_parameters: a database error's text must never carry what a resident submitted
        self.engine: AsyncEngine = create_async_engine(
            async_url(url), hide_parameters=True, **kwargs
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine.sync_engine, "checkin", _note_checkin)
            event.listen(self.engine.sync_engine, "checkout", self._ping_if_idle)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_conn: tuple[asyncio.AbstractEventLoop, AsyncConnection] | None = None
        self._writes = 0
        self._checkpoint: asyncio.Task[None] | None = None  # see _checkpoint_soon

    # A pooled PostgreSQL connection idle for longer than this is pinged before use.
    ping_after_idle_seconds = 5.0

    def _ping_if_idle(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Pessimistic disconnect handling, only where it pays. ``pool_pre_ping`` would cost a
        round trip on every checkout (three a booking) to guard against connections the
        server dropped while they sat in the pool: a restart or failover, an idle timeout, a
        proxy or firewall forgetting the socket. All of those strike idle connections; one
        used a moment ago is as alive as a ping would find it, and if the server goes away
        anyway (mid-transaction, where no ping helps either) SQLAlchemy invalidates the whole
        pool on the first disconnect error, so the connections checked out after it are
        fresh. A connection idle longer than ``ping_after_idle_seconds`` is pinged; a dead one
        is replaced before the caller sees it (DisconnectionError: the pool reconnects)."""
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < self.ping_after_idle_seconds:
            return  # new, or used a moment ago
        try:
            self.engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("connection found dead after sitting idle") from exc

    def migrate(self) -> None:
        migrate(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction. On SQLite it starts with BEGIN IMMEDIATE: a deferred
        transaction that reads and then writes can fail at once with "database is locked"
        when another writer committed in between; taking the write lock up front makes it
        wait (busy_timeout) instead."""
        async with self.sessions() as session, session.begin():
            if self.is_sqlite:
                await session.connection(execution_options={"sqlite_immediate": True})
            yield session

    async def write(self, fn: Callable[[Connection], T], *, background: bool = False) -> T:
        """One write transaction: ``fn``, a plain function of a sync SQLAlchemy
        ``Connection`` (Core statements, no awaits), committed when it returns and rolled
        back when it raises; its answer is returned. ``background``: work no request waits
        for (statistics, the outbox's bookkeeping); on SQLite it always runs on the writer's
        thread, so its milliseconds of Python are not one block on the event loop.

        On SQLite the whole transaction (BEGIN IMMEDIATE, ``fn``'s statements, COMMIT) runs
        on one connection kept for writes (``_writer``): right here on the event loop when
        SQLite's write lock is free this instant and nothing is queued for the connection
        (``run_here``: no thread hand-off at all; it never waits for a lock or checkpoints
        there), otherwise on the connection's aiosqlite thread in one hand-off, where it
        waits for the lock (sqlite_driver.py); ``transaction()`` hands over every statement
        and the commit. On PostgreSQL ``fn`` runs as ``run_sync`` on an async connection:
        the same round trips as a session's, without the session. Statement events
        (tracing) fire as for any other statement."""
        if not self.is_sqlite:
            async with self.engine.connect() as pg, pg.begin():
                return await pg.run_sync(fn)
        conn = await self._writer()
        sync = conn.sync_connection
        assert sync is not None

        def transaction() -> T:
            with sync.begin():
                return fn(sync)

        try:
            dbapi_conn: Any = sync.connection.dbapi_connection
            self._writes += 1
            if self._writes % CHECKPOINT_EVERY == 0:
                self._checkpoint_soon()
            # here on the event loop if SQLite's write lock is free, else on its thread
            if not background:
                done, answer = dbapi_conn.run_here(transaction, BUSY_TIMEOUT_MS)
                if done:
                    return answer  # type: ignore[no-any-return]
            result: T = await dbapi_conn.run_on_thread(transaction)
        except Exception:
            if sync.invalidated or sync.closed or sync.in_transaction():
                await self._close_writer()  # not in a state to be used again: a fresh one
            raise
        return result

    def _checkpoint_soon(self) -> None:
        """Copy the WAL back into the database file (a PASSIVE checkpoint: it waits for
        nobody and nobody waits for it) on a worker thread with a connection of its own. The
        kept writer never checkpoints on its own commits; its checkpoint used to run in a
        write's hand-off, so every 64th booking waited for its two fsyncs (over 100 ms here).
        One at a time: a checkpoint still running is not doubled."""
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        # the file as the engine opens it (absolute path, or the URI with its options)
        args, options = self.engine.dialect.create_connect_args(self.engine.url)
        path = args[0] if args else ":memory:"
        if path == ":memory:":
            return

        def checkpoint() -> None:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, uri=bool(options.get("uri"))
            )
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()

        async def run() -> None:
            try:
                await asyncio.to_thread(checkpoint)
            except Exception as exc:  # noqa: BLE001 - the next one will try again
                log.warning("storage.checkpoint_failed: %s", type(exc).__name__)

        self._checkpoint = asyncio.get_running_loop().create_task(run())

    async def _writer(self) -> AsyncConnection:
        """SQLite's writes (``write``) go through one connection kept for them, its
        transactions queued on its thread and run there back to back: SQLite has one writer
        anyway, and this process's writes then neither take a pool checkout nor wait in
        SQLite's busy handler for each other (it sleeps 1, 2, 5, 10 ms... between tries).
        Writers elsewhere (sessions, other processes) still meet the busy handler. One per
        event loop; ``dispose`` closes it."""
        loop = asyncio.get_running_loop()
        if self._write_conn is not None and self._write_conn[0] is loop:
            return self._write_conn[1]
        conn = await self.engine.connect()
        if self._write_conn is not None and self._write_conn[0] is loop:
            await conn.close()  # another write opened it meanwhile
            return self._write_conn[1]
        sync = conn.sync_connection
        assert sync is not None
        sync.execution_options(sqlite_immediate=True)
        dbapi_conn: Any = sync.connection.dbapi_connection
        if not hasattr(dbapi_conn, "run_on_thread"):
            await conn.close()
            raise RuntimeError("Database.write on SQLite needs gateway.storage.sqlite_driver")
        # its commits never checkpoint the WAL by themselves (one made on the event loop
        # would block it for the checkpoint's fsyncs): every CHECKPOINT_EVERY-th write sets
        # one off on a thread of its own (_checkpoint_soon); other connections' commits keep
        # SQLite's automatic checkpoints
        raw = dbapi_conn._connection._conn
        self._write_conn = (loop, conn)  # before the hop: a write meanwhile queues behind it
        await dbapi_conn.run_on_thread(lambda: raw.execute("PRAGMA wal_autocheckpoint=0"))
        return conn

    async def _close_writer(self) -> None:
        held, self._write_conn = self._write_conn, None
        if held is not None and held[0] is asyncio.get_running_loop():
            try:
                await held[1].close()
            except Exception as exc:  # noqa: BLE001 - it is being let go either way
                log.warning("storage.writer_close_failed", exc_info=exc)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def schema_state(self) -> SchemaState:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_schema_state)

    async def dispose(self) -> None:
        held, self._checkpoint = self._checkpoint, None
        if held is not None and not held.done() and held.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([held])
        await self._close_writer()
        await self.engine.dispose()


_CHECKED_IN = "gateway_checked_in"


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


BUSY_TIMEOUT_MS = 30_000  # SQLite waits this long for another writer (busy_timeout)
CHECKPOINT_EVERY = 64  # writes on the kept connection between WAL checkpoints (off its path)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is
    # deferred and cannot be made IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate")
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    dbapi_conn = conn.connection.dbapi_connection
    if hasattr(dbapi_conn, "begin_with_next_statement"):  # sqlite_driver: no hop of its own
        dbapi_conn.begin_with_next_statement(begin)
    else:
        conn.exec_driver_sql(begin)


def insert_ignoring(dialect: str, table: Any, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL (``dialect``: the
    connection's dialect name), for a session or a ``Database.write`` function."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(**values).on_conflict_do_nothing()


async def insert_ignoring_conflict(
    session: AsyncSession, table: Any, values: dict[str, Any]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    await session.execute(insert_ignoring(dialect, table, values))


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (CursorResult.rowcount, typed loosely by SQLAlchemy)."""
    return int(result.rowcount)

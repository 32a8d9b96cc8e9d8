"""aiosqlite with one thread hop per statement.

aiosqlite runs each sqlite3 call on the connection's own thread and hands the result back to
the event loop; SQLAlchemy's adaptation makes a statement four such calls (open a cursor,
execute, fetch, close) and returning a connection to the pool a fifth (a rollback, even after
a commit). Each hop is a thread wake-up and an event-loop wake-up: 0.1-0.3 ms on a shared
machine, more after the process has sat idle, and they were most of a booking's own time.

Here a statement is one hop (cursor, execute, fetch, close, all on the connection's thread,
with the cursor's description, rowcount and lastrowid brought back), and the pool's rollback
is skipped when the connection is known to be outside a transaction. Everything else (the
dialect, types, errors, the pool, server-side cursors) is SQLAlchemy's aiosqlite dialect,
given this DB-API adaptation with ``create_async_engine(..., module=dbapi())``.

A whole transaction can also be one hop (``OneHopConnection.run_on_thread``): a plain function
of a sync SQLAlchemy ``Connection`` is run on the connection's own thread, where this cursor,
commit and rollback call sqlite3 directly instead of handing over (``Database.write``).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")


class _Skipped(Exception):
    """A handed-over function whose caller was cancelled before it started."""


# (description, rowcount, lastrowid, rows or None, still in a transaction)
_Outcome = tuple[Any, int, int | None, list[Any] | None, bool]


def _run(aio: Any, begin: str | None, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the whole statement (after the transaction's BEGIN, when
    this is its first statement)."""
    conn: sqlite3.Connection = aio._conn
    if begin is not None:
        conn.execute(begin)
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(operation, parameters)
        else:
            cur.execute(operation, () if parameters is None else parameters)
        description = cur.description
        rows = cur.fetchall() if description else None
        return description, cur.rowcount, cur.lastrowid, rows, conn.in_transaction
    finally:
        cur.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds its results: no aiosqlite cursor behind it."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _hop(self, operation: Any, parameters: Any, many: bool) -> None:
        adapt: Any = self._adapt_connection
        async with adapt._execute_mutex:
            begin, adapt._begin = adapt._begin, None
            adapt._maybe_in_transaction = True  # until the statement says otherwise
            outcome = await self._connection._execute(
                _run, self._connection, begin, operation, parameters, many
            )
        self._description, self._rowcount, self._lastrowid, rows, in_tx = outcome
        adapt._maybe_in_transaction = in_tx
        self._rows = collections.deque(rows) if rows else collections.deque()

    def _here(self, operation: Any, parameters: Any, many: bool) -> None:
        """On the connection's own thread (``run_on_thread``): the statement, no hop."""
        adapt: Any = self._adapt_connection
        begin, adapt._begin = adapt._begin, None
        adapt._maybe_in_transaction = True
        try:
            outcome = _run(self._connection, begin, operation, parameters, many)
        except Exception as error:
            adapt._maybe_in_transaction = adapt._connection._conn.in_transaction
            adapt._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows, in_tx = outcome
        adapt._maybe_in_transaction = in_tx
        self._rows = collections.deque(rows) if rows else collections.deque()

    def _on_thread(self) -> bool:
        adapt: Any = self._adapt_connection
        return threading.get_ident() == adapt._thread_ident

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if self._on_thread():
            self._here(operation, parameters, False)
            return None
        return super().execute(operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        if self._on_thread():
            self._here(operation, seq_of_parameters, True)
            return None
        return super().executemany(operation, seq_of_parameters)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._hop(operation, parameters, False)
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._hop(operation, seq_of_parameters, True)
        return None


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_maybe_in_transaction", "_begin", "_thread_ident", "_queued", "_begun_here")
    _cursor_cls = OneHopCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        # True unless the last statement, commit or rollback left no transaction open (a
        # statement cancelled mid-hop leaves it True, so the pool's rollback still runs)
        self._maybe_in_transaction = True
        self._begin: str | None = None
        # the aiosqlite thread: a cursor, commit or rollback called there runs directly
        self._thread_ident: int | None = connection._thread.ident
        self._queued = 0  # run_on_thread calls handed over and not finished
        self._begun_here = False  # run_here began the transaction SQLAlchemy is beginning

    async def run_on_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on this connection's thread, in one hop: its statements (through this
        connection's cursors), commit and rollback call sqlite3 there directly. Calls queue
        on the thread and run one after another, each to its end, without going back to the
        event loop in between; the loop side must not use the connection meanwhile. ``fn``
        runs with the caller's context variables (trace spans). A caller cancelled before
        ``fn`` has started skips it; one cancelled while it runs waits for it to finish (it
        cannot be interrupted there); either way the caller is then cancelled."""
        ctx = contextvars.copy_context()
        skip: list[bool] = []

        def run() -> T:
            if skip:
                raise _Skipped
            return ctx.run(fn)

        future = asyncio.get_running_loop().create_future()
        self._queued += 1
        self._connection._tx.put_nowait((future, run))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            skip.append(True)
            while not future.done():
                try:
                    await asyncio.wait([future])
                except asyncio.CancelledError:
                    pass
            if not future.cancelled():
                future.exception()  # retrieved: the caller is cancelled whatever it was
            raise
        finally:
            self._queued -= 1

    def run_here(self, fn: Callable[[], T], busy_timeout_ms: int) -> tuple[bool, T | None]:
        """Run the write transaction ``fn`` on the calling thread (the event loop), no hop at
        all, when that cannot wait: nothing is handed over to this connection's thread, and
        SQLite's write lock is free this instant (BEGIN IMMEDIATE with no busy wait). Then
        ``fn``'s statements and its COMMIT run here (their SQLite work is microseconds; the
        SQLAlchemy work around them holds the GIL on the thread too). (True, its answer); or
        (False, None) with nothing done: the lock is taken, so hand it over
        (``run_on_thread``) to wait there. ``busy_timeout_ms``: the connection's own, put
        back after the try."""
        if self._queued or self._maybe_in_transaction:
            return False, None
        raw: sqlite3.Connection = self._connection._conn
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # SQLITE_BUSY: another writer holds the lock
            return False, None
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._maybe_in_transaction = self._begun_here = True
        on_thread, self._thread_ident = self._thread_ident, threading.get_ident()
        try:
            return True, fn()
        finally:
            self._thread_ident = on_thread
            self._begun_here = False
            if raw.in_transaction:  # fn did not commit or roll back: nothing is kept
                raw.rollback()
            self._maybe_in_transaction = False

    def begin_with_next_statement(self, begin: str) -> None:
        """Send ``begin`` (BEGIN or BEGIN IMMEDIATE) in the hop of the next statement: a
        transaction's BEGIN costs no hop of its own, and one with no statement none at all.
        Nothing when ``run_here`` has just begun it."""
        if self._begun_here:
            self._begun_here = False
            return
        self._begin = begin

    def rollback(self) -> None:
        self._begin = None
        if not self._maybe_in_transaction:
            return  # returned to the pool after a commit: nothing to roll back
        if threading.get_ident() == self._thread_ident:
            try:
                self._connection._conn.rollback()
            except Exception as error:
                self._handle_exception(error)
        else:
            super().rollback()
        self._maybe_in_transaction = False

    def commit(self) -> None:
        if self._begin is not None and not self._maybe_in_transaction:
            self._begin = None  # a transaction that ran no statement: nothing to commit
            return
        self._begin = None
        if threading.get_ident() == self._thread_ident:
            try:
                self._connection._conn.commit()
            except Exception as error:
                self._maybe_in_transaction = self._connection._conn.in_transaction
                self._handle_exception(error)
        else:
            super().commit()
        self._maybe_in_transaction = False


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True
        return OneHopConnection(self, await_(connection))


def dbapi() -> OneHopDBAPI:
    """The DB-API module to give ``create_async_engine`` (``module=``) for SQLite."""
    return OneHopDBAPI(aiosqlite, sqlite3)

"""The few statements of a booking's writes, run without SQLAlchemy's execution machinery.

``Database.write`` functions (the booking's two transactions, the audit row) ran seven Core
statements a booking on SQLite; SQLAlchemy's work around each one (the compiled cache, the
execution context, parameter processing, the result) was three quarters of the writes' time
and a fifth of the booking's own, while SQLite's own work was a few per cent. ``run`` does
what SQLAlchemy would do for such a statement, and only that: the statement compiled once per
dialect and set of parameter names (by SQLAlchemy, so the SQL is the same), each value put
through its column type's own bind processor (JSON, dates and times, booleans are written
byte for byte as SQLAlchemy writes them), executed on the connection's DB-API cursor (so the
transaction's BEGIN and its thread are the driver's as before).

Anything it does not do itself goes to ``Connection.execute`` unchanged: a SELECT (its rows
want the columns' result processors), a dialect other than SQLite (PostgreSQL's writes are
round trips, not Python), a connection outside a transaction (SQLAlchemy would begin one), a
statement whose columns take a Python-side default or ``onupdate`` the parameters do not
give, one with parameters rendered at execution (expanding ``IN``, literal execute), a
RETURNING column whose type processes results, an engine that echoes or has statement
listeners (tracing's SQL spans), and any error: a value a bind processor refuses, or a
statement the database refuses (SQLite undoes a failed statement whole), is run again by
SQLAlchemy, which raises it as it always does (its error classes, hidden parameters,
disconnect handling, ``handle_error`` listeners); only a failed BEGIN (the transaction's,
sent with its first statement) is raised here, as SQLAlchemy's ``DBAPIError`` of its kind,
since running the statement again would run it outside one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class _Plan:
    sql: str
    # per positional parameter: (name given by the caller or None, fixed value, processor)
    binds: tuple[tuple[str | None, Any, Any], ...]


class Rows:
    """What a statement run by ``run`` gives back: its rows (RETURNING) and rowcount, read as
    from a SQLAlchemy result."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise exc.NoResultFound("no row") if not self._rows else exc.MultipleResultsFound()
        return self._rows[0][0]


_plans: dict[tuple[Executable, Dialect, frozenset[str]], _Plan | None] = {}
_MAX_PLANS = 256  # statements are module constants; a bound all the same
_UNPLANNED = object()


def _plan(stmt: Executable, dialect: Dialect, names: frozenset[str]) -> _Plan | None:
    key = (stmt, dialect, names)  # the objects themselves: their ids could be reused
    known = _plans.get(key, _UNPLANNED)
    if known is not _UNPLANNED:
        return known  # type: ignore[return-value]
    compile_: Any = getattr(stmt, "compile")  # noqa: B009 - Executable does not declare it
    compiled: Any = compile_(dialect=dialect, column_keys=sorted(names))
    plan: _Plan | None = None
    returning = getattr(compiled, "returning", None) or ()
    if (
        compiled.positional
        and (compiled.isinsert or compiled.isupdate or compiled.isdelete)  # rows unprocessed
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not compiled.post_compile_params
        and not compiled.literal_execute_params
        and not any(c.type.result_processor(dialect, None) for c in returning)
    ):
        binds = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            processor = bind.type._cached_bind_processor(dialect)
            given = name if name in names else None
            if given is None and (bind.required or bind.callable is not None):
                break  # a value neither given nor fixed: SQLAlchemy's own path
            binds.append((given, bind.value, processor))
        else:
            plan = _Plan(compiled.string, tuple(binds))
    if len(_plans) >= _MAX_PLANS:
        _plans.clear()
    _plans[key] = plan
    return plan


def _listened(conn: Connection) -> bool:
    """Whether anything watches this connection's statements (its dispatch includes its
    engine's listeners; ``handle_error`` is the dialect's)."""
    d: Any = conn.dispatch
    return bool(
        conn.engine.echo
        or d.before_cursor_execute
        or d.after_cursor_execute
        or d.before_execute
        or d.after_execute
        or conn.dialect.dispatch.handle_error
    )


def run(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Any:
    """``conn.execute(stmt, params)`` for a write's statement (see the module's notes): its
    rows and rowcount as ``Rows``, or SQLAlchemy's own result where it does not apply."""
    dialect = conn.dialect
    if dialect.name != "sqlite" or not conn.in_transaction() or _listened(conn):
        return conn.execute(stmt, params)
    plan = _plan(stmt, dialect, frozenset(params))
    if plan is None:
        return conn.execute(stmt, params)
    values = []
    try:
        for name, fixed, processor in plan.binds:
            value = fixed if name is None else params[name]
            values.append(value if processor is None else processor(value))
    except Exception:  # noqa: BLE001 - refused by a type: raised as SQLAlchemy raises it
        return conn.execute(stmt, params)
    dbapi_conn: Any = conn.connection.dbapi_connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(plan.sql, tuple(values))
        rows = cursor.fetchall() if cursor.description else ()
        return Rows(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as error:
        raw = getattr(getattr(dbapi_conn, "_connection", None), "_conn", None)
        if raw is None or not raw.in_transaction:
            # the transaction's own BEGIN failed (a lock not had in time): nothing to run again
            raise exc.DBAPIError.instance(
                plan.sql, None, error, dialect.loaded_dbapi.Error, hide_parameters=True
            ) from error
        # the statement had no effect: SQLAlchemy runs it and raises what it raises
    finally:
        cursor.close()
    return conn.execute(stmt, params)

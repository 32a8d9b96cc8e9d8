"""The few statements of a booking's writes, run without SQLAlchemy's execution machinery.

``Database.write`` functions (the booking's two transactions, the audit row) ran seven Core
statements a booking on SQLite; SQLAlchemy's work around each one (the compiled cache, the
execution context, parameter processing, the result) was three quarters of the writes' time
and a fifth of the booking's own, while SQLite's own work was a few per cent. ``run`` does
what SQLAlchemy would do for such a statement, and only that: the statement compiled once per
dialect and set of parameter names (by SQLAlchemy, so the SQL is the same), each value put
through its column type's own bind processor (JSON, dates and times, booleans are written
byte for byte as SQLAlchemy writes them), executed on the connection's DB-API cursor (so the
transaction's BEGIN, its thread and its errors are the driver's as before), and DB-API
errors raised as SQLAlchemy's (``IntegrityError`` and the rest, parameters hidden).

Anything it does not do itself goes to ``Connection.execute`` unchanged: a dialect other than
SQLite (PostgreSQL's writes are round trips, not Python), a statement whose columns take a
Python-side default or ``onupdate`` the parameters do not give, a RETURNING column whose type
processes results, and any engine with statement listeners (tracing's SQL spans)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection
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


_plans: dict[tuple[Executable, str, frozenset[str]], _Plan | None] = {}
_MAX_PLANS = 256  # statements are module constants; a bound all the same


def _plan(stmt: Executable, conn: Connection, names: frozenset[str]) -> _Plan | None:
    dialect = conn.dialect
    key = (stmt, dialect.name, names)  # the statement itself: its id could be reused
    if key in _plans:
        return _plans[key]
    compiled: Any = stmt.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
    plan: _Plan | None = None
    returning = getattr(compiled, "returning", None) or ()
    if (
        compiled.positional
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
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


def run(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Any:
    """``conn.execute(stmt, params)`` for a write's statement (see the module's notes): its
    rows and rowcount as ``Rows``, or SQLAlchemy's own result where it does not apply."""
    if conn.dialect.name != "sqlite" or conn.dispatch.before_cursor_execute:
        return conn.execute(stmt, params)
    plan = _plan(stmt, conn, frozenset(params))
    if plan is None:
        return conn.execute(stmt, params)
    values = []
    for name, fixed, processor in plan.binds:
        value = fixed if name is None else params[name]
        values.append(value if processor is None else processor(value))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(plan.sql, tuple(values))
        rows = cursor.fetchall() if cursor.description else ()
        return Rows(rows, cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as error:
        raise exc.DBAPIError.instance(
            plan.sql,
            None,
            error,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=conn.dialect,
        ) from error
    finally:
        cursor.close()

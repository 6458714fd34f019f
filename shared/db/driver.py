"""Statements of a hot path run on the database driver itself, inside SQLAlchemy's transaction.

On PostgreSQL, SQLAlchemy's own execution path (a greenlet per call, an execution context, the
DBAPI adapter's cursor, the result's wrapping) costs about 90 µs of CPU a statement on this
machine, more than asyncpg takes to run it (bench/README.md, "Performance, round two"); on an
embedded SQLite file, whose statements take a few microseconds, it is nearly all of a statement's
cost. A ``DriverStatement`` is a Core statement compiled once per dialect and set of parameters and run
with asyncpg, or with the sqlite3 module on an inline connection (:mod:`shared.db.inline_sqlite`),
on the connection of the caller's transaction, so it commits or rolls back with everything else
the transaction did. It binds its values as SQLAlchemy would (each column type's processing: JSON
to text, an aware time to UTC), and a failure reaches the caller as SQLAlchemy would raise it (a
unique violation is an ``IntegrityError``; a connection lost is a ``DBAPIError`` whose connection
is invalidated), so the code around it cannot tell the difference.

An ``IN`` list bound at run time (``column.in_(bindparam(name, expanding=True))``), which SQLAlchemy
writes out anew for each length of the list, is sent to PostgreSQL as one array (``column =
ANY($n)``): one text, prepared once, whatever the list's length. SQLite has no arrays: there, a
statement with such a list runs through SQLAlchemy, as every statement does while tracing (so that
each keeps its span).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import asyncpg
from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Delete, Insert, Select, Update, operators, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement

from shared.core import tracing
from shared.db.inline_sqlite import InlineConnection

# A row as a mapping of its columns (SQLAlchemy's RowMapping is one too).
Row = Mapping[Any, Any]
# What runs on the driver: a query or a change of rows, built once with SQLAlchemy Core.
Statement = Select[Any] | Insert | Update | Delete


class _Compiled:
    """A statement's SQL for the driver, its parameters in order with their processing, and how each
    column of its result is read."""

    def __init__(self, compiled: SQLCompiler, statement: Statement, dialect: Dialect) -> None:
        self.compiled = compiled
        self.sql = compiled.string
        order = compiled.positiontup or []
        self.order = list(order)
        binds = compiled.binds
        self.processors: list[Callable[[Any], Any] | None] = [
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.order
        ]
        self.returned = list(getattr(statement, "exported_columns", ()))
        # How each column the statement returns is read (none for a plain insert): on PostgreSQL,
        # learnt with the type the server gives it on the first run; SQLite's columns have none.
        self.readers: list[tuple[str, Callable[[Any], Any] | None]] | None = None
        self.dialect = dialect
        if dialect.name == "sqlite":
            self.learn_readers([None] * len(self.returned))

    def learn_readers(self, type_oids: Sequence[int | None]) -> None:
        self.readers = [
            (column.key, column.type.dialect_impl(self.dialect).result_processor(self.dialect, oid))
            for column, oid in zip(self.returned, type_oids, strict=True)
        ]


class DriverStatement:
    """A Core statement run on the driver's connection (see the module)."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        # None: this dialect runs it through SQLAlchemy (an IN list on SQLite).
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled | None] = {}

    async def rows(self, connection: AsyncConnection, parameters: Row) -> list[Row]:
        """The rows the statement returns, each a mapping of its columns."""
        compiled = self._compiled_for(connection, parameters)
        if compiled is None:
            return [dict(row) for row in (await connection.execute(self.statement, dict(parameters))).mappings()]
        records = await _run(connection, compiled, _arguments(compiled, parameters), fetch=True, many=False)
        assert compiled.readers is not None  # learnt by the first run
        return [
            {
                name: value if read is None else read(value)
                for (name, read), value in zip(compiled.readers, record, strict=True)
            }
            for record in records
        ]

    async def run(self, connection: AsyncConnection, parameters: Row) -> None:
        """Run the statement for its effect."""
        compiled = self._compiled_for(connection, parameters)
        if compiled is None:
            await connection.execute(self.statement, dict(parameters))
            return
        await _run(connection, compiled, _arguments(compiled, parameters), fetch=False, many=False)

    async def run_many(self, connection: AsyncConnection, parameter_sets: Sequence[Row]) -> None:
        """Run the statement once for each of ``parameter_sets`` (all with the same keys), in one
        round trip."""
        if not parameter_sets:
            return
        compiled = self._compiled_for(connection, parameter_sets[0])
        if compiled is None:
            await connection.execute(self.statement, [dict(parameters) for parameters in parameter_sets])
            return
        arguments = [_arguments(compiled, parameters) for parameters in parameter_sets]
        await _run(connection, compiled, arguments, fetch=False, many=True)

    def _compiled_for(self, connection: AsyncConnection, parameters: Row) -> _Compiled | None:
        """The statement compiled for the connection's driver, or None to run it through SQLAlchemy."""
        dialect = connection.dialect
        if dialect.driver not in _DRIVERS or tracing.active():
            return None
        key = (dialect.name, frozenset(parameters))
        if key not in self._compiled:
            self._compiled[key] = _compile(self.statement, dialect, sorted(parameters))
        return self._compiled[key]


# The drivers a statement runs on itself: asyncpg, and SQLite's inline connections (the
# embedded store's engines are made with them).
_DRIVERS = frozenset({"asyncpg", "aiosqlite"})


def _compile(statement: Statement, dialect: Dialect, keys: Sequence[str]) -> _Compiled | None:
    """``statement`` compiled for ``dialect``'s driver, or None where it runs through SQLAlchemy."""
    if dialect.name == "postgresql":
        statement = _lists_as_arrays(statement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        if dialect.name == "sqlite" and any(bind.expanding for bind in compiled.binds.values()):
            return None  # an IN list bound at run time, which SQLite has no array to take
        raise ValueError("a statement run on the driver cannot expand its parameters at every run")
    return _Compiled(compiled, statement, dialect)


def _lists_as_arrays(statement: Statement) -> Statement:
    """``statement`` with each ``column IN (list)`` written as ``column = ANY(array)``."""

    def as_array(element: visitors.ExternallyTraversible, **_: Any) -> ColumnElement[Any] | None:
        if (
            isinstance(element, BinaryExpression)
            and element.operator is operators.in_op
            and isinstance(element.right, BindParameter)
            and element.right.expanding
        ):
            listed = element.right
            array = bindparam(listed.key, listed.value, type_=ARRAY(element.left.type), unique=listed.unique)
            return element.left == any_(array)
        return None

    # Each kind of statement is traversible; the stubs' overloads know them one at a time.
    traversible: visitors.ExternallyTraversible = statement
    return cast(Statement, visitors.replacement_traverse(traversible, {}, as_array))


def _arguments(compiled: _Compiled, parameters: Row) -> list[Any]:
    """The statement's positional arguments: the parameters given, and the values bound in the
    statement itself, each processed as its type says."""
    values = compiled.compiled.construct_params(dict(parameters))
    assert values is not None  # None only for a statement compiled for another purpose (DDL)
    return [
        values[name] if process is None else process(values[name])
        for name, process in zip(compiled.order, compiled.processors, strict=True)
    ]


async def _run(connection: AsyncConnection, compiled: _Compiled, arguments: Any, *, fetch: bool, many: bool) -> Any:
    """Run ``compiled`` with its positional ``arguments``, or once for each of a list of them
    (``many``); the rows it returned (``fetch``), each a sequence of its values."""
    # The pooled connection the transaction holds, without a trip through SQLAlchemy's greenlet;
    # one invalidated (lost) is asked for the usual way, which raises as SQLAlchemy does.
    sync = connection.sync_connection
    fairy = sync.connection if sync is not None and not sync.invalidated else await connection.get_raw_connection()
    adapter: Any = fairy.dbapi_connection
    driver = adapter.driver_connection
    if isinstance(driver, InlineConnection):
        return await _run_on_sqlite(connection, driver, compiled, arguments, fetch=fetch, many=many)
    try:
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                # SQLAlchemy's adapter begins the transaction with its first statement: this is one.
                await adapter._start_transaction()
            if fetch:
                if compiled.readers is None:
                    prepared = await driver.prepare(compiled.sql)
                    compiled.learn_readers([attribute.type.oid for attribute in prepared.get_attributes()])
                return await driver.fetch(compiled.sql, *arguments)
            if many:
                return await driver.executemany(compiled.sql, arguments)
            return await driver.execute(compiled.sql, *arguments)
    except asyncpg.PostgresError as error:
        # The server refused the statement and said so: the connection is in a known state.
        raise _as_sqlalchemy_raises(connection.dialect, adapter, compiled.sql, arguments, error) from error
    except BaseException as error:
        # Cut off mid-statement (a timeout, a cancelled task, a lost socket): the server may still
        # run what was sent (a BEGIN, and a transaction left open with its locks), so the connection
        # is closed rather than handed out again. A fault test of a hung database found one.
        if sync is not None and not sync.invalidated:
            sync.invalidate(error)
        if isinstance(error, Exception):
            raise _as_sqlalchemy_raises(
                connection.dialect, adapter, compiled.sql, arguments, error, invalidated=True
            ) from error
        raise


async def _run_on_sqlite(
    connection: AsyncConnection,
    driver: InlineConnection,
    compiled: _Compiled,
    arguments: Any,
    *,
    fetch: bool,
    many: bool,
) -> Any:
    """``_run`` on an inline SQLite connection: the call runs at once in the loop's thread."""
    if not connection.in_transaction():
        # SQLAlchemy begins a transaction with a connection's first statement: this is one.
        await connection.begin()

    def work(raw: sqlite3.Connection) -> list[Any]:
        if many:
            raw.executemany(compiled.sql, arguments)
            return []
        cursor = raw.execute(compiled.sql, arguments)
        return cursor.fetchall() if fetch else []

    try:
        return await driver.run(work)
    except sqlite3.Error as error:
        dbapi_error = connection.dialect.loaded_dbapi.Error
        raised: BaseException = DBAPIError.instance(
            compiled.sql, arguments, error, dbapi_error, dialect=connection.dialect
        )
        raise raised from error


def _as_sqlalchemy_raises(
    dialect: Dialect, adapter: Any, sql: str, arguments: Any, error: Exception, *, invalidated: bool = False
) -> BaseException:
    """``error`` as SQLAlchemy would raise it from the same statement, saying whether its
    connection was ``invalidated``."""
    try:
        # The adapter's own translation of asyncpg's errors into DBAPI ones (IntegrityError...).
        adapter._handle_exception(error)
    except dialect.loaded_dbapi.Error as translated:
        raised: BaseException = DBAPIError.instance(
            sql, arguments, translated, dialect.loaded_dbapi.Error, connection_invalidated=invalidated, dialect=dialect
        )
        return raised
    except Exception as other:  # not a database error (a timeout): as it is, as SQLAlchemy raises it
        return other
    raise AssertionError("the adapter raises every error it is given")

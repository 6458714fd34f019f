"""Loading and updating a service's rows by id inside the caller's unit of work, and reading them
in keyset pages for exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Select, Table, bindparam, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.core.clock import Clock
from shared.core.errors import NotFound
from shared.db.driver import DriverStatement, Row

# The bound parameter that names the row in the statements built once per table (a name no column
# has: the other parameters of an update are its columns).
_ROW_ID = "rows_row_id"


class UnitOfWork(Protocol):
    """What rows are read and written in: an open connection in its transaction, and the clock
    that stamps changes (a service's ``Transaction``)."""

    @property
    def connection(self) -> AsyncConnection:
        """The open connection, in the unit of work's transaction."""
        ...

    @property
    def clock(self) -> Clock:
        """The service's clock."""
        ...


class Rows:
    """One table's rows by primary key ``id``; the table has an ``updated_at`` column."""

    def __init__(self, table: Table, what: str) -> None:
        self.table = table
        self.what = what
        # Built once, and run on the driver: consumers find and update rows for nearly every event,
        # and a statement built per call costs more CPU to build and key for the cache than to run.
        # An update sets the columns its parameters name.
        self._find = select(table).where(table.c.id == bindparam(_ROW_ID))
        self._found = DriverStatement(self._find)
        self._found_for_update = DriverStatement(self._find.with_for_update())
        self._update = DriverStatement(update(table).where(table.c.id == bindparam(_ROW_ID)))
        self._columns = frozenset(table.c.keys())

    async def find(self, tx: UnitOfWork, row_id: UUID, *, for_update: bool = False) -> Row | None:
        """The row, or None; ``for_update`` locks it until the transaction ends (PostgreSQL)."""
        query = self._found_for_update if for_update else self._found
        found = await query.rows(tx.connection, {_ROW_ID: row_id})
        return found[0] if found else None

    async def get(self, tx: UnitOfWork, row_id: UUID, *, for_update: bool = False) -> Row:
        """The row; ``NotFound`` (404) when there is none."""
        row = await self.find(tx, row_id, for_update=for_update)
        if row is None:
            raise NotFound(f"no {self.what} {row_id}")
        return row

    async def update(self, tx: UnitOfWork, row_id: UUID, **values: Any) -> None:
        """Change columns of the row (a missing row changes nothing), stamping ``updated_at``."""
        unknown = values.keys() - self._columns
        if unknown:
            raise ValueError(f"{self.table.name} has no columns {sorted(unknown)}")
        await self._update.run(tx.connection, {"updated_at": tx.clock.now(), **values, _ROW_ID: row_id})

    async def read(self, engine: AsyncEngine, row_id: UUID) -> RowMapping:
        """The row, read on a short connection of its own (a query, outside any unit of work);
        ``NotFound`` (404) when there is none."""
        async with engine.connect() as connection:
            row = (await connection.execute(self._find, {_ROW_ID: row_id})).mappings().first()
        if row is None:
            raise NotFound(f"no {self.what} {row_id}")
        return row

    def page_query(self, after: UUID | None, limit: int) -> Select[Any]:
        """Up to ``limit`` rows with ids after ``after``, in id order: a page of an export."""
        query = select(self.table).order_by(self.table.c.id).limit(limit)
        if after is not None:
            query = query.where(self.table.c.id > after)
        return query

    async def page(self, engine: AsyncEngine, after: UUID | None, limit: int) -> Sequence[RowMapping]:
        """A page of the export (``page_query``), read on a short connection of its own."""
        async with engine.connect() as connection:
            rows: Sequence[RowMapping] = (await connection.execute(self.page_query(after, limit))).mappings().all()
        return rows

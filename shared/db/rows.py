"""Loading and updating a service's rows by id inside the caller's unit of work, and reading them
in keyset pages for exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Select, Table, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.core.clock import Clock
from shared.core.errors import NotFound


class UnitOfWork(Protocol):
    """What rows are read and written in: an open session, and the clock that stamps changes
    (a service's ``Transaction``)."""

    @property
    def session(self) -> AsyncConnection:
        """The open session."""
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

    async def find(self, tx: UnitOfWork, row_id: UUID, *, for_update: bool = False) -> RowMapping | None:
        """The row, or None; ``for_update`` locks it until the transaction ends (PostgreSQL)."""
        query = select(self.table).where(self.table.c.id == row_id)
        if for_update:
            query = query.with_for_update()
        return (await tx.session.execute(query)).mappings().first()

    async def get(self, tx: UnitOfWork, row_id: UUID, *, for_update: bool = False) -> RowMapping:
        """The row; ``NotFound`` (404) when there is none."""
        row = await self.find(tx, row_id, for_update=for_update)
        if row is None:
            raise NotFound(f"no {self.what} {row_id}")
        return row

    async def update(self, tx: UnitOfWork, row_id: UUID, **values: Any) -> None:
        """Change columns of the row (a missing row changes nothing), stamping ``updated_at``."""
        await tx.session.execute(
            update(self.table).where(self.table.c.id == row_id).values(updated_at=tx.clock.now(), **values)
        )

    async def read(self, engine: AsyncEngine, row_id: UUID) -> RowMapping:
        """The row, read on a short connection of its own (a query, outside any unit of work);
        ``NotFound`` (404) when there is none."""
        async with engine.connect() as connection:
            query = select(self.table).where(self.table.c.id == row_id)
            row = (await connection.execute(query)).mappings().first()
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

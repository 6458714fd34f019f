"""Loading and updating a service's rows by id, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Table, select, update
from sqlalchemy.engine import RowMapping

from shared.errors import NotFound
from shared.messaging.store import Transaction


class Rows:
    """One table's rows by primary key ``id``; the table has an ``updated_at`` column."""

    def __init__(self, table: Table, what: str) -> None:
        self.table = table
        self.what = what

    async def find(self, tx: Transaction, row_id: UUID, *, for_update: bool = False) -> RowMapping | None:
        """The row, or None; ``for_update`` locks it until the transaction ends (PostgreSQL)."""
        query = select(self.table).where(self.table.c.id == row_id)
        if for_update:
            query = query.with_for_update()
        return (await tx.session.execute(query)).mappings().first()

    async def get(self, tx: Transaction, row_id: UUID, *, for_update: bool = False) -> RowMapping:
        """The row; ``NotFound`` (404) when there is none."""
        row = await self.find(tx, row_id, for_update=for_update)
        if row is None:
            raise NotFound(f"no {self.what} {row_id}")
        return row

    async def update(self, tx: Transaction, row_id: UUID, now: datetime, **values: Any) -> None:
        """Change columns of the row (a missing row changes nothing), stamping ``updated_at``."""
        await tx.session.execute(update(self.table).where(self.table.c.id == row_id).values(updated_at=now, **values))

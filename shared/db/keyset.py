"""Keyset pages (seek pagination) of a list ordered by an instant, ties broken by the row's id:
the work queues, the inboxes and the search of the case file.

A page ends at a position: the last row's instant and id. The next page is the rows after that
position in the same order, found through the order's own index, so page 40 costs what page 1
does; and unlike an offset, a position stays right while rows join and leave the list between two
pages (a case dispatched off the queue does not push an unseen one back a page, nor show one
twice). The id breaks ties: rows filed at the same instant still have one order, and a page
boundary falling among them loses none and repeats none.

A column of instants that may be NULL (a deadline not set) sorts its NULLs last, whichever way
the list runs: the key is the instant with NULL read as the farthest instant of that direction,
which is also what the page's position carries, so a page ending on such a row still has a next.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, ColumnElement, Select, Uuid, func, literal, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.core.errors import InvalidInput
from shared.db.engine import UTCDateTime

# What a NULL instant sorts as: after every instant a city's data holds, in either direction.
# Not ``datetime.max``/``min``: those overflow when a driver or a reader moves them to a zone.
_NULL_LAST_ASCENDING = datetime(9999, 1, 1, tzinfo=UTC)
_NULL_LAST_DESCENDING = datetime(1, 1, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's instant (as the order reads it) and its id. Given back
    as a page's ``after``, the next page starts right after it."""

    at: datetime
    row_id: UUID

    def token(self) -> str:
        """The position as an opaque token for a URL (base64url, no padding)."""
        return base64.urlsafe_b64encode(f"{self.at.isoformat()}|{self.row_id}".encode()).decode().rstrip("=")

    @classmethod
    def of_token(cls, token: str, parameter: str = "after") -> Position:
        """The position a ``token`` gives; ``InvalidInput`` naming the request's ``parameter``
        for a token no page ended at (a client's mistake, never a server error)."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            at_text, row_id = text.split("|")
            at = datetime.fromisoformat(at_text)
            if at.tzinfo is None:
                raise ValueError("a position's instant has its offset")
            # In UTC now: an instant near year 1 or 9999 with an offset cannot be moved to UTC,
            # and the database would be asked to.
            return cls(at.astimezone(UTC), UUID(row_id))
        except (ValueError, binascii.Error, OverflowError):
            message = f"{parameter} is not a position a page of this list ended at"
            raise InvalidInput(message, {parameter: token}) from None


@dataclass(frozen=True)
class Page:
    """A page of a list: its rows, and where the next page starts (None on the last page)."""

    rows: Sequence[RowMapping]
    following: Position | None


class Keyset:
    """The order of a list, by ``instant`` then by ``row_id`` (oldest first, or newest first when
    ``descending``), and the pages it is read in."""

    def __init__(self, instant: Column[datetime], row_id: Column[UUID], *, descending: bool = False) -> None:
        self.instant = instant
        self.row_id = row_id
        self.descending = descending
        self._null_as = (_NULL_LAST_DESCENDING if descending else _NULL_LAST_ASCENDING) if instant.nullable else None

    def _key(self) -> ColumnElement[datetime]:
        if self._null_as is None:
            return self.instant
        return func.coalesce(self.instant, literal(self._null_as, UTCDateTime()))

    def query(self, query: Select[Any], after: Position | None, limit: int) -> Select[Any]:
        """``query``'s rows after ``after`` in this order, one more than ``limit`` (the extra row
        says whether another page follows)."""
        key = self._key()
        if after is not None:
            seen = tuple_(literal(after.at, UTCDateTime()), literal(after.row_id, Uuid()))
            rest = tuple_(key, self.row_id)
            query = query.where(rest < seen if self.descending else rest > seen)
        order = (key.desc(), self.row_id.desc()) if self.descending else (key.asc(), self.row_id.asc())
        return query.order_by(*order).limit(limit + 1)

    def page(self, rows: Sequence[RowMapping], limit: int) -> Page:
        """The page of ``rows`` read by ``query``: the first ``limit``, and the position of the
        last of them when more rows were there."""
        if len(rows) <= limit:
            return Page(rows, None)
        last = rows[limit - 1]
        at = last[self.instant.name]
        if at is None:
            assert self._null_as is not None  # a NOT NULL column holds no NULL
            at = self._null_as
        return Page(rows[:limit], Position(at, last[self.row_id.name]))

    async def read(self, engine: AsyncEngine, query: Select[Any], after: Position | None, limit: int) -> Page:
        """One page of ``query`` after ``after``, read on a short connection of its own."""
        async with engine.connect() as connection:
            rows = (await connection.execute(self.query(query, after, limit))).mappings().all()
        return self.page(rows, limit)

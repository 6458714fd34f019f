"""Exports: a service's records streamed as NDJSON, one JSON object per line, read in keyset pages.

Pages are ordered by the record id and each is read on its own short connection, so an export of
300,000 cases holds one page in memory and no long transaction. Ids are UUIDv7 and compare the
same way in PostgreSQL, in SQLite (hex text) and in Python, so a reader can merge several
services' exports by id. A page is one statement: a record and its details (e.g. a case and its
dispatch attempts) are read from one snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

NDJSON = "application/x-ndjson"
PAGE_SIZE = 1000


class NDJSONResponse(StreamingResponse):
    """A streamed body of newline-delimited JSON objects."""

    media_type = NDJSON


class ExportRecord(BaseModel):
    """One line of an export; ``id`` orders the export."""

    id: UUID


R = TypeVar("R", bound=ExportRecord)

After = Annotated[UUID | None, Query(description="resume an interrupted export after this id (the last one received)")]


def export_responses(record: type[ExportRecord]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of an export route: each line is one ``record``."""
    # The schema describes one line; "object" replaces the "string" FastAPI assumes for streams.
    return {
        200: {
            "model": record,
            "description": f"one {record.__name__} per line, ordered by id",
            "content": {NDJSON: {"schema": {"type": "object"}}},
        }
    }


async def ndjson_export(
    fetch_page: Callable[[UUID | None, int], Awaitable[Sequence[R]]], after: UUID | None
) -> NDJSONResponse:
    """Stream every record ``fetch_page(after, limit)`` returns, page after page, ordered by id.

    The first page is read before the response starts, so a database that is down answers 503 in
    the project's error shape rather than an empty 200. A failure later cuts the stream short: the
    reader sees an incomplete chunked body, never a silently truncated export.
    """
    first = await fetch_page(after, PAGE_SIZE)

    async def lines() -> AsyncIterator[bytes]:
        page = first
        while page:
            yield b"".join(record.model_dump_json().encode() + b"\n" for record in page)
            if len(page) < PAGE_SIZE:
                return
            page = await fetch_page(page[-1].id, PAGE_SIZE)

    return NDJSONResponse(lines())

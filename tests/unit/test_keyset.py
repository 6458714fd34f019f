"""Keyset pages (shared.db.keyset): a list read page after page in any page size is the whole list
in its order, ties broken by id, rows without an instant last; and a token is a position only when
a page made it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.core.errors import InvalidInput
from shared.db.engine import UTCDateTime, create_engine
from shared.db.keyset import Keyset, Position

MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

metadata = MetaData()
tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("queue", String(8), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("deadline", UTCDateTime, nullable=True),
    Column("n", Integer, nullable=False),
)


def _deadline(n: int) -> datetime | None:
    # Every third task has no deadline; the others share theirs in pairs (ties for the id to break).
    return None if n % 3 == 0 else MONDAY + timedelta(hours=n // 2)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Eleven tasks of queue "a" and two of queue "b" in a SQLite file; several tasks received at
    the same instant."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keyset.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        rows = [
            {
                "id": UUID(int=(n * 7919) % 101),  # ids not in the order of n
                "queue": "a" if n < 11 else "b",
                "received_at": MONDAY + timedelta(minutes=n // 3),
                "deadline": _deadline(n),
                "n": n,
            }
            for n in range(13)
        ]
        await connection.execute(insert(tasks), rows)
    yield engine
    await engine.dispose()


async def every_page(engine: AsyncEngine, keyset: Keyset, limit: int) -> list[list[int]]:
    """The ``n`` of queue "a"'s tasks, page by page, each next page asked for with the token a
    client would have been given."""
    query = select(tasks).where(tasks.c.queue == "a")
    pages: list[list[int]] = []
    after: Position | None = None
    while True:
        page = await keyset.read(engine, query, after, limit)
        pages.append([row["n"] for row in page.rows])
        if page.following is None:
            return pages
        after = Position.of_token(page.following.token())


def expected(key: str, *, descending: bool = False, nulls_as: datetime | None = None) -> list[int]:
    """Queue "a" sorted by ``key`` then id, NULL read as ``nulls_as``."""

    def sort_key(n: int) -> tuple[datetime | None, UUID]:
        instant = MONDAY + timedelta(minutes=n // 3) if key == "received_at" else _deadline(n) or nulls_as
        return instant, UUID(int=(n * 7919) % 101)

    return sorted(range(11), key=sort_key, reverse=descending)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 3, 4, 10, 11, 12])
async def test_pages_of_any_size_make_the_whole_list_in_order(
    engine: AsyncEngine, limit: int, descending: bool
) -> None:
    pages = await every_page(engine, Keyset(tasks.c.received_at, tasks.c.id, descending=descending), limit)

    assert [n for page in pages for n in page] == expected("received_at", descending=descending)
    assert all(len(page) == limit for page in pages[:-1])
    assert 0 < len(pages[-1]) <= limit


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 11])
async def test_rows_without_an_instant_come_last_and_none_is_lost(engine: AsyncEngine, limit: int) -> None:
    nearest_first = await every_page(engine, Keyset(tasks.c.deadline, tasks.c.id), limit)
    farthest_first = await every_page(engine, Keyset(tasks.c.deadline, tasks.c.id, descending=True), limit)

    undated = [n for n in range(11) if n % 3 == 0]
    flat = [n for page in nearest_first for n in page]
    assert flat == expected("deadline", nulls_as=datetime(9999, 1, 1, tzinfo=UTC))
    assert sorted(flat[-len(undated) :]) == undated
    flat = [n for page in farthest_first for n in page]
    assert flat == expected("deadline", descending=True, nulls_as=datetime(1, 1, 2, tzinfo=UTC))
    assert sorted(flat[-len(undated) :]) == undated


async def test_a_row_added_before_the_position_does_not_shift_the_next_page(engine: AsyncEngine) -> None:
    keyset = Keyset(tasks.c.received_at, tasks.c.id)
    query = select(tasks).where(tasks.c.queue == "a")
    first = await keyset.read(engine, query, None, 4)
    async with engine.begin() as connection:
        row = {"id": UUID(int=999), "queue": "a", "received_at": MONDAY - timedelta(days=1), "deadline": None, "n": 99}
        await connection.execute(insert(tasks), [row])
    rest = await keyset.read(engine, query, first.following, 100)

    assert [row["n"] for row in [*first.rows, *rest.rows]] == expected("received_at")


def test_a_token_round_trips() -> None:
    position = Position(MONDAY, UUID(int=7))
    assert Position.of_token(position.token()) == position
    # An instant with another offset comes back as the same instant, in UTC.
    shanghai = Position(datetime.fromisoformat("2026-11-02T09:00:00+08:00"), UUID(int=7))
    assert Position.of_token(shanghai.token()) == position


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGEgcG9zaXRpb24",  # "not a position"
        "MjAyNi0xMS0wMlQwMTowMDowMHx4",  # an instant and no id
        "城市",
        _token(f"2026-11-02T01:00:00|{UUID(int=7)}"),  # an instant of no zone
        _token(f"2026-11-02T01:00:00+00:00|{UUID(int=7)}|more"),
        _token(f"0001-01-01T00:00:00+05:00|{UUID(int=7)}"),  # before year 1 in UTC
        _token(f"9999-12-31T23:00:00-05:00|{UUID(int=7)}"),  # after year 9999 in UTC
        "\xff\xfe",
    ],
)
def test_a_token_no_page_made_is_invalid_input_naming_the_parameter(token: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Position.of_token(token)
    assert refused.value.message.startswith("after ")
    assert refused.value.details == {"after": token}

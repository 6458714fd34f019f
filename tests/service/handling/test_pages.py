"""A department's inbox over HTTP in keyset pages: longer than a page, read to its end through
``Link: rel="next"``, each case once, nearest deadline first (ties by id), a case without a
deadline last, the statuses asked for kept from page to page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from sqlalchemy import update

from handling import handlers
from handling.models import cases
from tests.service.conftest import ServiceUnderTest
from tests.service.handling.conftest import DUE, OTHER_DEPARTMENT, dispatched_case, staff
from tests.service.http import next_link, read_to_the_end, served

USER = staff()


def ids(pages: list[list[dict[str, object]]]) -> list[UUID]:
    return [UUID(str(row["id"])) for page in pages for row in page]


async def test_the_inbox_is_read_to_its_end_nearest_deadline_first(handling: ServiceUnderTest) -> None:
    # Deadlines in pairs (ties for the id to break), the latest first so the order is not the filing's.
    due = {n: DUE + timedelta(hours=4 - n // 2) for n in range(7)}
    tasks = {n: await dispatched_case(handling, deadline=due[n]) for n in range(7)}
    await dispatched_case(handling, OTHER_DEPARTMENT)  # not this department's
    # The column allows a task without a deadline: it is listed, last.
    undated = tasks.pop(3)
    async with handling.store.engine.begin() as connection:
        await connection.execute(update(cases).where(cases.c.id == undated).values(handling_deadline=None))
    nearest_first = [case_id for _, case_id in sorted((due[n], case_id) for n, case_id in tasks.items())]

    async with served(handling, USER) as client:
        for limit in (1, 2, 3, 7):
            pages = await read_to_the_end(client, f"/handling/inbox?limit={limit}")
            assert ids(pages) == [*nearest_first, undated], limit
            assert all(len(page) == limit for page in pages[:-1])


async def test_the_statuses_asked_for_are_kept_from_page_to_page(handling: ServiceUnderTest) -> None:
    accepted = [await dispatched_case(handling, deadline=DUE + timedelta(minutes=n)) for n in range(3)]
    for case_id in accepted:
        await handlers.accept(handling.ctx, USER, case_id)
    assigned = await dispatched_case(handling, deadline=DUE - timedelta(days=1))

    async with served(handling, USER) as client:
        first = await client.get("/handling/inbox?status=accepted&status=handled&limit=2")
        following = next_link(first) or ""
        pages = await read_to_the_end(client, "/handling/inbox?status=accepted&status=handled&limit=2")

    assert parse_qs(urlsplit(following).query)["status"] == ["accepted", "handled"]
    assert ids(pages) == accepted
    assert assigned not in ids(pages)


async def test_a_token_no_page_made_is_refused_naming_after(handling: ServiceUnderTest) -> None:
    async with served(handling, USER) as client:
        answer = await client.get("/handling/inbox", params={"after": "MjAyNi0xMS0wMlQwMTowMDowMHx4"})
    assert answer.status_code == 422
    assert answer.json()["details"] == {"after": "MjAyNi0xMS0wMlQwMTowMDowMHx4"}

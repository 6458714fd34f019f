"""An inspector's check tasks (核查) over HTTP in keyset pages: read to their end through
``Link: rel="next"``, each case once, nearest check deadline first (ties by id), a task without a
deadline last; the whole list in one page by default, as the phone app reads it."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import update

from closure.models import cases
from tests.service.closure.helpers import checking_case, first_cell, inspector_of
from tests.service.conftest import ServiceFactory, ServiceUnderTest, hours
from tests.service.http import read_to_the_end, served


def ids(pages: list[list[dict[str, object]]]) -> list[UUID]:
    return [UUID(str(row["id"])) for page in pages for row in page]


async def test_check_tasks_are_read_to_their_end_nearest_deadline_first(service_under_test: ServiceFactory) -> None:
    closure: ServiceUnderTest = await service_under_test("closure")
    city = closure.ctx.city
    inspector = inspector_of(city, first_cell(city))
    tasks: list[tuple[int, UUID]] = []
    for n in range(7):
        if n and n % 2 == 0:
            closure.clock.advance(hours(1))  # handled an hour later: checked an hour later
        tasks.append((n // 2, await checking_case(closure)))
    (_, undated), *dated = tasks
    async with closure.store.engine.begin() as connection:
        await connection.execute(update(cases).where(cases.c.id == undated).values(check_deadline=None))
    nearest_first = [case_id for _, case_id in sorted(dated)]

    async with served(closure, inspector) as client:
        for limit in (1, 2, 4):
            assert ids(await read_to_the_end(client, f"/closure/checks?limit={limit}")) == [*nearest_first, undated]
        whole = await client.get("/closure/checks")
        refused = await client.get("/closure/checks?after=bm90IGEgcG9zaXRpb24")

    assert (len(whole.json()), "link" in whole.headers) == (7, False)
    assert (refused.status_code, refused.json()["details"]) == (422, {"after": "bm90IGEgcG9zaXRpb24"})

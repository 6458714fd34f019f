"""Dispatch's lists over HTTP in keyset pages: a queue longer than a page read to its end through
``Link: rel="next"``, each case once, oldest filed first; the shift lead's extension requests the
same way, a case without a deadline last; a token no page made refused."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from sqlalchemy import update

from dispatch import handlers
from dispatch.models import cases
from shared.core.auth import Role
from shared.events.catalogue import ExtensionRequested
from tests.service.conftest import ServiceUnderTest, principal
from tests.service.dispatch.conftest import DISPATCHER, DUE, LEAD, ROUTED_TO, UNROUTED, file_case
from tests.service.http import next_link, read_to_the_end, served


def ids(pages: list[list[dict[str, object]]]) -> list[UUID]:
    return [UUID(str(row["id"])) for page in pages for row in page]


async def coordination_queue(sut: ServiceUnderTest, count: int) -> list[UUID]:
    """``count`` cases in the coordination queue, filed in threes at one instant (ties for the id
    to break), a minute between the threes; their ids oldest filed first."""
    filed: list[tuple[int, UUID]] = []
    for n in range(count):
        if n and n % 3 == 0:
            sut.clock.advance(timedelta(minutes=1))
        filed.append((n // 3, await file_case(sut, UNROUTED)))
    return [case_id for _, case_id in sorted(filed)]


async def test_a_queue_longer_than_a_page_is_read_to_its_end_through_next_links(
    dispatch_service: ServiceUnderTest,
) -> None:
    queue = await coordination_queue(dispatch_service, 8)
    await file_case(dispatch_service)  # dispatched at once: in no queue

    async with served(dispatch_service, DISPATCHER) as client:
        pages = await read_to_the_end(client, "/dispatch/queue?status=coordination&limit=3")
        first = await client.get("/dispatch/queue?status=coordination&limit=3")

    assert [len(page) for page in pages] == [3, 3, 2]
    assert ids(pages) == queue
    # The next page's address is the request's own, every parameter kept, ``after`` set.
    following = parse_qs(urlsplit(next_link(first) or "").query)
    assert (following["status"], following["limit"], len(following["after"])) == (["coordination"], ["3"], 1)


async def test_a_case_dispatched_between_two_pages_shifts_no_other(dispatch_service: ServiceUnderTest) -> None:
    queue = await coordination_queue(dispatch_service, 6)

    async with served(dispatch_service, DISPATCHER) as client:
        first = await client.get("/dispatch/queue?limit=3")
        await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, queue[0], ROUTED_TO)
        rest = await read_to_the_end(client, next_link(first) or "")

    assert ids([first.json(), *rest]) == queue


async def test_a_list_that_fits_a_page_names_no_next(dispatch_service: ServiceUnderTest) -> None:
    await coordination_queue(dispatch_service, 3)
    async with served(dispatch_service, DISPATCHER) as client:
        answer = await client.get("/dispatch/queue?limit=3")
    assert (len(answer.json()), "link" in answer.headers) == (3, False)


async def test_a_token_no_page_made_is_refused_naming_after(dispatch_service: ServiceUnderTest) -> None:
    async with served(dispatch_service, LEAD) as client:
        for path in ("/dispatch/queue", "/dispatch/extensions"):
            answer = await client.get(path, params={"after": "nonsense"})
            assert answer.status_code == 422, answer.text
            assert answer.json()["details"] == {"after": "nonsense"}
            assert answer.json()["message"].startswith("after ")
        answer = await client.get("/dispatch/queue", params={"after": "x" * 201})  # longer than any token
    assert answer.status_code == 422
    assert answer.json()["details"][0]["loc"] == ["query", "after"]


async def test_extension_requests_page_earliest_deadline_first_one_without_a_deadline_last(
    dispatch_service: ServiceUnderTest,
) -> None:
    waiting: list[UUID] = []
    for _ in range(5):
        case_id = await file_case(dispatch_service)
        request = ExtensionRequested(
            department_id=ROUTED_TO, requested_by="officer-1", requested_deadline=DUE + timedelta(days=1), reason="x"
        )
        await dispatch_service.deliver(request, case_id)
        waiting.append(case_id)
        dispatch_service.clock.advance(timedelta(minutes=5))  # each due five minutes after the one before
    # The column allows a pending request on a case without a deadline; it is listed, last.
    async with dispatch_service.store.engine.begin() as connection:
        await connection.execute(update(cases).where(cases.c.id == waiting[1]).values(handling_deadline=None))

    async with served(dispatch_service, LEAD) as client:
        for limit in (1, 2, 4):
            pages = await read_to_the_end(client, f"/dispatch/extensions?limit={limit}")
            assert ids(pages) == [waiting[0], *waiting[2:], waiting[1]]
        assert len((await client.get("/dispatch/extensions")).json()) == 5  # one page by default
    async with served(dispatch_service, principal(Role.DISPATCHER)) as client:
        assert (await client.get("/dispatch/extensions")).status_code == 403

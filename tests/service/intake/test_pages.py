"""Intake's lists over HTTP in keyset pages: the operator's queue and an inspector's verification
tasks read to their end through ``Link: rel="next"``, each report once, oldest first (ties by id);
the case search's pages named both in its body and in the header; a token no page made refused."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from shared.core.auth import Role
from shared.events.catalogue import ReportSource
from tests.service.conftest import ServiceUnderTest, principal
from tests.service.http import next_link, read_to_the_end, served
from tests.service.intake.conftest import inspector, send

OPERATOR = principal(Role.OPERATOR)
LEAD = principal(Role.SHIFT_LEAD)


def ids(pages: list[list[dict[str, object]]]) -> list[UUID]:
    return [UUID(str(row["id"])) for page in pages for row in page]


async def reports(
    intake: ServiceUnderTest, source: ReportSource, cells: list[str], reporter_id: str | None = None
) -> list[UUID]:
    """A report from ``source`` in each of ``cells`` (apart, so none is merged into another),
    received in pairs at one instant, a minute between pairs; their ids oldest first."""
    received: list[tuple[int, UUID]] = []
    for n, cell in enumerate(cells):
        if n and n % 2 == 0:
            intake.clock.advance(timedelta(minutes=1))
        received.append((n // 2, (await send(intake, source, cell=cell, reporter_id=reporter_id))["id"]))
    return [report_id for _, report_id in sorted(received)]


async def test_the_operators_queue_longer_than_a_page_is_read_to_its_end(intake: ServiceUnderTest) -> None:
    cells = [cell.id for cell in intake.ctx.city.cells[:7]]
    detections = await reports(intake, ReportSource.VIDEO, cells, reporter_id="camera-1")
    await send(intake, ReportSource.PUBLIC)  # verifying: another queue

    async with served(intake, OPERATOR) as client:
        pages = await read_to_the_end(client, "/intake/reports?status=awaiting_review&limit=2")
        everything = await client.get("/intake/reports?status=awaiting_review")

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert ids(pages) == detections
    assert ids([everything.json()]) == detections
    assert "link" not in everything.headers


async def test_an_inspectors_verification_tasks_come_in_pages_too(intake: ServiceUnderTest) -> None:
    own_cells = list(intake.ctx.city.inspector("insp-001").cell_ids[:5])
    tasks = await reports(intake, ReportSource.PUBLIC, own_cells)

    async with served(intake, inspector("insp-001")) as client:
        pages = await read_to_the_end(client, "/intake/verifications?limit=2")
        whole = await client.get("/intake/verifications")  # the whole list in one page by default
    async with served(intake, inspector("insp-003")) as client:
        others = await client.get("/intake/verifications?limit=1")

    assert ids(pages) == tasks
    assert (ids([whole.json()]), "link" in whole.headers) == (tasks, False)
    assert (others.json(), "link" in others.headers) == ([], False)


async def test_the_case_search_names_its_next_page_in_its_body_and_its_header(intake: ServiceUnderTest) -> None:
    cells = [cell.id for cell in intake.ctx.city.cells[:5]]
    filed = await reports(intake, ReportSource.INSPECTOR, cells)

    async with served(intake, LEAD) as client:
        first = await client.get("/intake/cases?limit=2&status=filed")
        following = next_link(first) or ""
        assert parse_qs(urlsplit(following).query) == {
            "limit": ["2"],
            "status": ["filed"],
            "after": [first.json()["next"]],
        }
        rest = await client.get(f"/intake/cases?limit=10&status=filed&after={first.json()['next']}")

    assert [UUID(case["id"]) for page in (first, rest) for case in page.json()["items"]] == filed[::-1]
    assert (rest.json()["next"], "link" in rest.headers) == (None, False)


async def test_a_token_no_page_made_is_refused_naming_after(intake: ServiceUnderTest) -> None:
    async with served(intake, LEAD) as client:
        for path in ("/intake/reports", "/intake/cases"):
            answer = await client.get(path, params={"after": "bm90IGEgcG9zaXRpb24"})
            assert answer.status_code == 422, answer.text
            assert answer.json()["details"] == {"after": "bm90IGEgcG9zaXRpb24"}
    async with served(intake, inspector("insp-001")) as client:
        assert (await client.get("/intake/verifications?after=%F0%9F%8F%99")).status_code == 422

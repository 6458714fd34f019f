"""The search of the case file: every filter narrows the answer, pages follow each other newest
first without a gap or a repeat, and each caller finds only the cases it may see one by one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import pytest

from intake import queries
from intake.domain import CaseStatus
from intake.handlers import file_report
from intake.queries import CaseSearch
from shared.core.auth import Principal, Role
from shared.core.errors import InvalidInput, OutOfScope
from shared.db.driver import Row
from shared.db.keyset import Position
from shared.events.catalogue import CaseAccepted, CaseDispatched, ReportSource
from tests.service.conftest import ServiceUnderTest, hours, principal
from tests.service.intake.conftest import CELL, ORDINARY, OTHER_CELL, URGENT, inspector, send

LEAD = principal(Role.SHIFT_LEAD)
URBAN, HOUSING = "bureau-urban", "bureau-housing"
EAST_CELL, EAST_CELL_2 = "990103001001001", "990103001001002"  # district 990103, insp-027
MONDAY = date(2026, 11, 2)


@dataclass
class Cases:
    """Four cases: two in district 990102 on Monday (an urgent one and an ordinary one, an hour
    apart), two in district 990103 on Tuesday at the same instant (a hotline work order filed by
    an operator, and an inspector's report); the first and third dispatched to the urban bureau,
    the second to housing and accepted there."""

    urgent: Row
    ordinary: Row
    ordered: Row
    east: Row

    def number(self, name: str) -> str:
        return str(getattr(self, name)["case_number"])

    def ids(self, *names: str) -> set[UUID]:
        return {getattr(self, name)["id"] for name in names}


@pytest.fixture
async def filed(intake: ServiceUnderTest) -> Cases:
    urgent = await send(intake, ReportSource.INSPECTOR, cell=CELL, category=URGENT)
    intake.clock.advance(hours(1))
    ordinary = await send(intake, ReportSource.INSPECTOR, cell=OTHER_CELL, category=ORDINARY)
    intake.clock.advance(hours(24))
    order = await send(intake, ReportSource.HOTLINE, cell=EAST_CELL, category=ORDINARY, reporter_id="hotline")
    ordered = await file_report(intake.ctx, principal(Role.OPERATOR), order["id"])
    east = await send(intake, ReportSource.INSPECTOR, cell=EAST_CELL_2, category=URGENT)
    for case, department in ((urgent, URBAN), (ordinary, HOUSING), (ordered, URBAN)):
        dispatched = CaseDispatched(
            department_id=department, dispatched_by="dispatcher", handling_deadline=intake.clock.now(), attempt=1
        )
        await intake.deliver(dispatched, case["id"], source="dispatch")
    await intake.deliver(CaseAccepted(department_id=HOUSING, accepted_by="clerk"), ordinary["id"], source="handling")
    return Cases(urgent, ordinary, ordered, east)


async def found(
    intake: ServiceUnderTest, caller: Principal = LEAD, search: CaseSearch | None = None, limit: int = 100
) -> list[UUID]:
    """The ids of every case the search finds, page after page, in the order answered."""
    ids: list[UUID] = []
    position: Position | None = None
    while True:
        page = await queries.search_cases(intake.ctx, caller, search or CaseSearch(), limit, position)
        ids += [row["id"] for row in page.rows]
        assert len(page.rows) <= limit
        if page.following is None:
            return ids
        # The token a client gets back leads to the same place.
        position = Position.of_token(page.following.token())


def search(intake: ServiceUnderTest, **words: object) -> CaseSearch:
    return CaseSearch.of(intake.ctx.city, **words)  # type: ignore[arg-type]


async def test_staff_find_every_case_newest_first_in_pages_without_gaps(intake: ServiceUnderTest, filed: Cases) -> None:
    # Tuesday's two cases were filed at the same instant: the id decides between them.
    tuesday = sorted(filed.ids("ordered", "east"), reverse=True)
    newest_first = [*tuesday, filed.ordinary["id"], filed.urgent["id"]]
    assert await found(intake) == newest_first
    for limit in (1, 2, 3):
        assert await found(intake, limit=limit) == newest_first
    page = await queries.search_cases(intake.ctx, LEAD, CaseSearch(), 4)
    assert (len(page.rows), page.following) == (4, None)


async def test_a_case_filed_while_paging_does_not_shift_the_pages(intake: ServiceUnderTest, filed: Cases) -> None:
    first = await queries.search_cases(intake.ctx, LEAD, CaseSearch(), 2)
    intake.clock.advance(hours(1))
    await send(intake, ReportSource.INSPECTOR, cell=EAST_CELL, category=URGENT)
    rest = await queries.search_cases(intake.ctx, LEAD, CaseSearch(), 10, first.following)
    assert rest.following is None
    assert {row["id"] for row in [*first.rows, *rest.rows]} == filed.ids("urgent", "ordinary", "ordered", "east")


async def test_each_filter_narrows_the_answer(intake: ServiceUnderTest, filed: Cases) -> None:
    async def ids(**words: object) -> set[UUID]:
        return set(await found(intake, search=search(intake, **words)))

    everything = filed.ids("urgent", "ordinary", "ordered", "east")
    assert await ids() == everything
    assert await ids(number=filed.number("ordinary")) == filed.ids("ordinary")
    assert await ids(number=filed.number("ordinary")[:-1]) >= filed.ids("ordinary")
    assert await ids(number=filed.number("urgent")[:7]) == everything  # the month: 2026-11
    assert await ids(number="2026-12") == set()
    assert await ids(number="2026_11%") == set()  # the LIKE wildcards are only characters
    assert await ids(statuses=[CaseStatus.DISPATCHED]) == filed.ids("urgent", "ordered")
    assert await ids(statuses=[CaseStatus.ACCEPTED, CaseStatus.FILED]) == filed.ids("ordinary", "east")
    assert await ids(category=URGENT) == filed.ids("urgent", "east")
    assert await ids(category="02-05") == filed.ids("ordinary", "ordered")  # a major class
    assert await ids(district_id="990102") == filed.ids("urgent", "ordinary")
    assert await ids(district_id="990104") == set()
    assert await ids(department_id=URBAN) == filed.ids("urgent", "ordered")
    assert await ids(source=ReportSource.HOTLINE) == filed.ids("ordered")
    # Days are the city's: Monday 09:00 and 10:00 in Shanghai, Tuesday 10:00.
    assert await ids(filed_from=MONDAY, filed_to=MONDAY) == filed.ids("urgent", "ordinary")
    assert await ids(filed_from=MONDAY + timedelta(days=1)) == filed.ids("ordered", "east")
    assert await ids(filed_to=MONDAY - timedelta(days=1)) == set()
    assert await ids(district_id="990103", category=URGENT, source=ReportSource.INSPECTOR) == filed.ids("east")


async def test_a_department_finds_only_its_own_cases(intake: ServiceUnderTest, filed: Cases) -> None:
    urban = principal(Role.DEPARTMENT, department_id=URBAN)
    assert set(await found(intake, urban)) == filed.ids("urgent", "ordered")
    # Asking for another department's cases finds none of them.
    assert await found(intake, urban, search(intake, department_id=HOUSING)) == []
    assert set(await found(intake, principal(Role.DEPARTMENT, department_id=HOUSING))) == filed.ids("ordinary")
    assert await found(intake, principal(Role.DEPARTMENT, department_id="bureau-transport")) == []
    # Exactly as one case at a time is refused.
    with pytest.raises(OutOfScope):
        await queries.visible_case(intake.ctx, filed.ordinary["id"], urban)


async def test_inspectors_and_systems_find_what_they_may_see(intake: ServiceUnderTest, filed: Cases) -> None:
    assert await found(intake, inspector("insp-001")) == [filed.urgent["id"]]
    assert await found(intake, inspector("insp-003")) == [filed.ordinary["id"]]
    assert set(await found(intake, inspector("insp-027"))) == filed.ids("ordered", "east")
    assert await found(intake, principal(Role.HOTLINE, "hotline")) == [filed.ordered["id"]]
    assert await found(intake, principal(Role.VIDEO, "camera-1")) == []
    for staff in (Role.OPERATOR, Role.DISPATCHER):
        assert len(await found(intake, principal(staff))) == 4


@pytest.mark.parametrize(
    ("words", "wrong"),
    [
        ({"category": "99-99"}, "category"),
        ({"district_id": "nowhere"}, "district"),
        ({"department_id": "bureau-nothing"}, "department"),
        ({"filed_from": MONDAY, "filed_to": MONDAY - timedelta(days=1)}, "filed_to"),
    ],
)
async def test_a_search_for_what_the_city_does_not_have_is_invalid(
    intake: ServiceUnderTest, words: dict[str, object], wrong: str
) -> None:
    with pytest.raises(InvalidInput, match=wrong):
        search(intake, **words)

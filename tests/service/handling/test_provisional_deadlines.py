"""A department's task shows whether its handling deadline is provisional (counted on a year the
State Council has not published yet), and the deadline dispatch recomputed once it was loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from handling import queries
from shared.events.catalogue import CaseDispatched, DeadlineKind, DeadlineRecomputed
from tests.service.conftest import ServiceUnderTest
from tests.service.handling.conftest import DEPARTMENT, reported_case, staff

PROVISIONAL = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
OFFICIAL = datetime(2027, 1, 6, 1, 0, tzinfo=UTC)


async def test_the_inbox_shows_the_provisional_deadline_then_the_recomputed_one(handling: ServiceUnderTest) -> None:
    case_id = await reported_case(handling)
    dispatched = CaseDispatched(
        department_id=DEPARTMENT, dispatched_by="d", handling_deadline=PROVISIONAL, attempt=1, provisional=True
    )
    await handling.deliver(dispatched, case_id, source="dispatch")
    (task,) = (await queries.inbox(handling.ctx, staff(), None, 10)).rows
    assert (task["handling_deadline"], task["handling_deadline_provisional"]) == (PROVISIONAL, True)

    recomputed = DeadlineRecomputed(
        kind=DeadlineKind.HANDLING, deadline=OFFICIAL, provisional=False, previous=PROVISIONAL
    )
    await handling.deliver(recomputed, case_id, source="dispatch")
    (task,) = (await queries.inbox(handling.ctx, staff(), None, 10)).rows
    assert (task["handling_deadline"], task["handling_deadline_provisional"]) == (OFFICIAL, False)
    # A check deadline recomputed by closure is no deadline of the department's.
    check = DeadlineRecomputed(kind=DeadlineKind.CHECK, deadline=PROVISIONAL, provisional=True, previous=OFFICIAL)
    await handling.deliver(check, case_id, source="closure")
    (task,) = (await queries.inbox(handling.ctx, staff(), None, 10)).rows
    assert (task["handling_deadline"], task["handling_deadline_provisional"]) == (OFFICIAL, False)

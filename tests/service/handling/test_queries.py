"""Handling's reads: a department's inbox (its cases only, nearest deadline first, by status), one
of its cases, and the export pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy.engine import RowMapping

from handling import handlers, queries
from handling.domain import IN_INBOX, TaskStatus
from shared.core.errors import NotFound
from shared.core.ids import new_id
from shared.events.catalogue import CaseClosed, CaseSuspended
from tests.service.conftest import ServiceUnderTest
from tests.service.handling.conftest import DUE, OTHER_DEPARTMENT, dispatched_case, reported_case, staff


async def test_the_inbox_shows_the_departments_open_cases_nearest_deadline_first(
    handling: ServiceUnderTest,
) -> None:
    user = staff()
    late = await dispatched_case(handling, deadline=DUE + timedelta(days=2))
    soon = await dispatched_case(handling, deadline=DUE - timedelta(days=1))
    middle = await dispatched_case(handling, deadline=DUE)
    await dispatched_case(handling, OTHER_DEPARTMENT, deadline=DUE - timedelta(days=2))
    await reported_case(handling)

    inbox = (await queries.inbox(handling.ctx, user, None, 100)).rows
    assert [task["id"] for task in inbox] == [soon, middle, late]
    assert [task["id"] for task in (await queries.inbox(handling.ctx, user, None, 2)).rows] == [soon, middle]


async def test_the_inbox_filters_by_status(handling: ServiceUnderTest) -> None:
    user = staff()
    assigned = await dispatched_case(handling, deadline=DUE + timedelta(hours=1))
    accepted = await dispatched_case(handling, deadline=DUE + timedelta(hours=2))
    handled = await dispatched_case(handling, deadline=DUE + timedelta(hours=3))
    returned = await dispatched_case(handling, deadline=DUE + timedelta(hours=4))
    suspended = await dispatched_case(handling, deadline=DUE + timedelta(hours=5))
    closed = await dispatched_case(handling, deadline=DUE + timedelta(hours=6))
    await handlers.accept(handling.ctx, user, accepted)
    await handlers.accept(handling.ctx, user, handled)
    await handlers.report_handled(handling.ctx, user, handled, "done", [])
    await handlers.return_case(handling.ctx, user, returned, "not ours")
    await handling.deliver(CaseSuspended(suspended_by="lead", reason="wait"), suspended)
    await handling.deliver(CaseClosed(closed_by="lead", on_time=True), closed)

    assert ids((await queries.inbox(handling.ctx, user, None, 100)).rows) == [assigned, accepted, suspended]
    assert ids((await queries.inbox(handling.ctx, user, IN_INBOX, 100)).rows) == [assigned, accepted, suspended]
    assert ids((await queries.inbox(handling.ctx, user, [TaskStatus.HANDLED], 100)).rows) == [handled]
    both = [TaskStatus.RETURNED, TaskStatus.CLOSED]
    assert ids((await queries.inbox(handling.ctx, user, both, 100)).rows) == [returned, closed]
    assert (await queries.inbox(handling.ctx, staff(OTHER_DEPARTMENT), [TaskStatus.HANDLED], 100)).rows == []


async def test_own_case_is_the_departments_only(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    row = await queries.own_case(handling.ctx, staff(), case_id)
    assert row["id"] == case_id
    assert row["status"] == TaskStatus.ASSIGNED
    for user, unknown in ((staff(OTHER_DEPARTMENT), case_id), (staff(), new_id())):
        with pytest.raises(NotFound):
            await queries.own_case(handling.ctx, user, unknown)
    with pytest.raises(NotFound):
        await queries.own_case(handling.ctx, staff(), await reported_case(handling))


async def test_the_export_pages_every_case_in_id_order(handling: ServiceUnderTest) -> None:
    dispatched = [await dispatched_case(handling) for _ in range(3)]
    never_dispatched = await reported_case(handling)
    everything = sorted([*dispatched, never_dispatched])

    first = await queries.export_page(handling.ctx, None, 3)
    assert [row["id"] for row in first] == everything[:3]
    rest = await queries.export_page(handling.ctx, first[-1]["id"], 3)
    assert [row["id"] for row in rest] == everything[3:]
    assert await queries.export_page(handling.ctx, everything[-1], 3) == []


def ids(rows: Sequence[RowMapping]) -> list[UUID]:
    """The ids of ``rows``, in order."""
    return [row["id"] for row in rows]

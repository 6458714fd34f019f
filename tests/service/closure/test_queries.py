"""Closure's reads: an inspector's open check tasks, one case for staff, the export's pages."""

from __future__ import annotations

from uuid import UUID

import pytest

from closure import queries
from closure.models import cases
from shared.core.auth import Role
from shared.core.errors import NotFound
from tests.service.closure.helpers import first_cell, handled, inspector_of, open_case
from tests.service.conftest import ServiceFactory, hours, principal


async def test_an_inspector_sees_its_open_check_tasks_nearest_deadline_first(
    service_under_test: ServiceFactory,
) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    cell_id = first_cell(city)
    other_cell = next(c.id for c in city.cells if c.id not in city.inspector_for(cell_id).cell_ids)
    earlier_filed, later_filed, still_open = [await open_case(closure, cell_id) for _ in range(3)]
    elsewhere = await open_case(closure, other_cell)
    await handled(closure, elsewhere)
    await handled(closure, later_filed)
    closure.clock.advance(hours(1))
    await handled(closure, earlier_filed)  # handled later: its check is due later

    tasks = (await queries.check_tasks(closure.ctx, inspector_of(city, cell_id), 100)).rows

    assert [row["id"] for row in tasks] == [later_filed, earlier_filed]
    assert tasks[0]["check_deadline"] < tasks[1]["check_deadline"]
    assert all(row["status"] == "checking" for row in tasks)
    assert still_open not in [row["id"] for row in tasks]
    assert [
        row["id"] for row in (await queries.check_tasks(closure.ctx, inspector_of(city, other_cell), 100)).rows
    ] == [elsewhere]
    assert (await queries.check_tasks(closure.ctx, principal(Role.INSPECTOR, inspector_id="insp-none"), 100)).rows == []


async def test_staff_read_one_case_and_an_unknown_one_is_not_found(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await open_case(closure)

    assert dict(await queries.get_case(closure.ctx, case_id)) == dict(await closure.row(cases, case_id))
    with pytest.raises(NotFound):
        await queries.get_case(closure.ctx, UUID(int=1))


async def test_the_export_pages_through_every_case_in_id_order(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_ids = sorted([await open_case(closure) for _ in range(3)])

    first = await queries.export_page(closure.ctx, None, 2)
    rest = await queries.export_page(closure.ctx, first[-1]["id"], 2)

    assert [row["id"] for row in first] == case_ids[:2]
    assert [row["id"] for row in rest] == case_ids[2:]
    assert await queries.export_page(closure.ctx, case_ids[-1], 2) == []

"""Revision 0006 of dispatch (provisional deadlines) on both backends: a handling deadline set
before it was counted on official days, so it stays official, and it counts as granted as it
stands: a case suspended before the upgrade resumes exactly as it would have.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dispatch import domain
from dispatch.models import cases
from shared.city.calendar import TimeBasis, WorkingCalendar
from shared.city.loader import load_city
from shared.core.ids import new_id
from shared.db.engine import UTCDateTime, create_engine
from shared.db.migrations import upgrade_to_head
from tests.backends.test_migrations import downgrade
from tests.conftest import Backend

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 09:00 in the city
DEADLINE = T0 + timedelta(days=2)


async def test_a_deadline_set_before_revision_0006_is_official_and_resumes_as_before(backend: Backend) -> None:
    engine = create_engine(backend.settings.database_url("dispatch"))
    try:
        await upgrade_to_head("dispatch", engine)
        await downgrade("dispatch", engine, "0005")
        case_id = new_id()
        columns = {
            "id": case_id,
            "case_number": "2026-11-000001",
            "category_code": "01-01-12",
            "cell_id": "c1",
            "community_id": "m1",
            "street_id": "s1",
            "district_id": "d1",
            "status": "suspended",
            "department_id": "co-drainage",
            "attempt": 1,
            "dispatched_at": T0,
            "accepted": True,
            "handling_deadline": DEADLINE,
            "suspended_at": T0 + timedelta(hours=1),
            "supervision_level": 0,
            "filed_at": T0,
            "updated_at": T0,
        }
        # The columns as revision 0005 left them; the instants need their type to be written.
        instants = ("dispatched_at", "handling_deadline", "suspended_at", "filed_at", "updated_at")
        table = sa.table(
            "cases",
            sa.column("id", sa.Uuid()),
            *(sa.column(name, UTCDateTime()) for name in instants),
            *(sa.column(name) for name in columns if name != "id" and name not in instants),
        )
        async with engine.begin() as connection:
            await connection.execute(table.insert(), columns)
        await upgrade_to_head("dispatch", engine)
        async with engine.connect() as connection:
            row = (await connection.execute(sa.select(cases).where(cases.c.id == case_id))).mappings().one()
    finally:
        await engine.dispose()

    case = domain.CaseState.of(row)
    assert (case.granted_deadline, case.pauses) == (DEADLINE, ())
    assert (case.handling_deadline_provisional, case.dispatch_deadline_provisional) == (False, False)
    calendar = WorkingCalendar()
    category = load_city(backend.settings.city_dir).category(case.category_code)
    resumed_at = T0 + timedelta(hours=3)
    decision = domain.decide_resume(case, "lead-1", resumed_at, calendar, category)
    before = calendar.shift(DEADLINE, T0 + timedelta(hours=1), resumed_at, TimeBasis.WORKING)
    assert (decision.changes["handling_deadline"], decision.changes["handling_deadline_provisional"]) == (before, False)

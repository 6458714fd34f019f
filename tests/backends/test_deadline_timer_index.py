"""The deadline timer's scan reads the open cases only, however many closed ones a year leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from sqlalchemy import text

from dispatch.models import cases
from dispatch.timer import unreported_missed_deadlines
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head

NOW = datetime(2026, 12, 31, tzinfo=UTC)


def _case(status: str, deadline: datetime) -> dict[str, object]:
    return {
        "id": uuid4(),
        "case_number": "2026-01-000001",
        "category_code": "02-05-01",
        "cell_id": "c",
        "community_id": "m",
        "street_id": "s",
        "district_id": "d",
        "status": status,
        "attempt": 1,
        "accepted": True,
        "handling_deadline": deadline,
        "supervision_level": 0,
        "filed_at": deadline - timedelta(hours=4),
        "updated_at": deadline,
    }


async def test_the_timer_skips_closed_cases_by_index(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}")
    try:
        await upgrade_to_head("dispatch", engine)
        closed = [_case("closed", NOW - timedelta(minutes=n)) for n in range(1, 3001)]  # on time, never marked
        late = _case("dispatched", NOW - timedelta(days=400))
        async with engine.begin() as connection:
            await connection.execute(cases.insert(), [*closed, late])
            query = unreported_missed_deadlines(NOW, 500)
            compiled = query.compile(connection.sync_connection, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            due = (await connection.execute(query)).mappings().all()
        assert "ix_dispatch_cases_timer (status=?" in plan
        assert [case["id"] for case in due] == [late["id"]]
    finally:
        await engine.dispose()

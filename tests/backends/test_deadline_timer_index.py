"""The timers' scans read the open cases only, however many closed ones a year leaves: dispatch's
deadline timer and closure's check timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import Select, Table, text

from closure.models import cases as closure_cases
from closure.timer import unreported_missed_checks
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


def _checked_case(status: str, check_deadline: datetime) -> dict[str, object]:
    return {
        "id": uuid4(),
        "case_number": "2026-01-000001",
        "category_code": "02-05-01",
        "source": "inspector",
        "cell_id": "c",
        "inspector_id": "insp-001",
        "status": status,
        "check_deadline": check_deadline,
        "checks": 1,
        "updated_at": check_deadline,
    }


async def _scan(
    tmp_path: Path, service: str, table: Table, rows: list[dict[str, object]], query: Select[Any]
) -> tuple[str, list[object]]:
    """SQLite's plan for a timer's scan, and the ids it finds, in ``service``'s schema holding ``rows``."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}")
    try:
        await upgrade_to_head(service, engine)
        async with engine.begin() as connection:
            await connection.execute(table.insert(), rows)
            compiled = query.compile(connection.sync_connection, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            due = (await connection.execute(query)).mappings().all()
        return plan, [case["id"] for case in due]
    finally:
        await engine.dispose()


async def test_the_timer_skips_closed_cases_by_index(tmp_path: Path) -> None:
    closed = [_case("closed", NOW - timedelta(minutes=n)) for n in range(1, 3001)]  # on time, never marked
    late = _case("dispatched", NOW - timedelta(days=400))
    plan, due = await _scan(tmp_path, "dispatch", cases, [*closed, late], unreported_missed_deadlines(NOW, 500))
    assert "ix_dispatch_cases_timer (status=?" in plan
    assert due == [late["id"]]


async def test_the_check_timer_skips_answered_checks_by_index(tmp_path: Path) -> None:
    answered = [_checked_case("closed", NOW - timedelta(minutes=n)) for n in range(1, 3001)]  # never missed
    late = _checked_case("checking", NOW - timedelta(days=400))
    plan, due = await _scan(tmp_path, "closure", closure_cases, [*answered, late], unreported_missed_checks(NOW, 500))
    assert "ix_closure_check_timer (status=?" in plan
    assert due == [late["id"]]

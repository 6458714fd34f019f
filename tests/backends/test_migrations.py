"""Revision 0003 of the lifecycle services (the records the batch recount reads) on both backends:
it upgrades schemas that already hold cases, and undoes cleanly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.core.ids import new_id
from shared.db.engine import UTCDateTime, create_engine
from shared.db.migrations import alembic_config, upgrade_to_head
from tests.conftest import Backend

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


async def downgrade(service: str, engine: AsyncEngine, revision: str) -> None:
    config = alembic_config(service)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def cases_0002(*columns: sa.ColumnClause[Any]) -> sa.TableClause:
    """A service's ``cases`` table as revision 0002 left it (the columns a test writes)."""
    return sa.table(
        "cases",
        sa.column("id", sa.Uuid()),
        sa.column("category_code", sa.String()),
        sa.column("cell_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("updated_at", UTCDateTime()),
        *columns,
    )


async def test_revision_0003_upgrades_existing_cases_and_downgrades(backend: Backend) -> None:
    engines = {
        s: create_engine(backend.settings.database_url(s)) for s in ("intake", "dispatch", "handling", "closure")
    }
    try:
        for service, engine in engines.items():
            await upgrade_to_head(service, engine)
            await downgrade(service, engine, "0002")
        handled, checked = new_id(), new_id()
        common = {"category_code": "02-05-01", "cell_id": "c1", "updated_at": T0}
        async with engines["handling"].begin() as connection:
            await connection.execute(
                cases_0002(
                    *(sa.column(name, sa.String()) for name in ("description", "street_id", "district_id")),
                    *(sa.column(name, sa.Float()) for name in ("lon", "lat")),
                    sa.column("report_photos", sa.JSON()),
                    sa.column("handled_at", UTCDateTime()),
                ).insert(),
                {
                    "id": handled,
                    "status": "handled",
                    "description": "x",
                    "street_id": "s1",
                    "district_id": "d1",
                    "lon": 113.6,
                    "lat": 34.7,
                    "report_photos": [],
                    "handled_at": T0,
                    **common,
                },
            )
        async with engines["closure"].begin() as connection:
            await connection.execute(
                cases_0002(
                    *(sa.column(name, sa.String()) for name in ("case_number", "source", "inspector_id")),
                    sa.column("checks", sa.Integer()),
                ).insert(),
                {
                    "id": checked,
                    "status": "checking",
                    "case_number": "2026-11-000001",
                    "source": "inspector",
                    "inspector_id": "insp-001",
                    "checks": 1,
                    **common,
                },
            )

        for service, engine in engines.items():
            await upgrade_to_head(service, engine)
        async with engines["handling"].connect() as connection:
            first = sa.table("cases", sa.column("id", sa.Uuid()), sa.column("first_handled_at", UTCDateTime()))
            query = sa.select(first.c.first_handled_at).where(first.c.id == handled)
            assert (await connection.execute(query)).scalar_one() == T0
        async with engines["closure"].connect() as connection:
            counts = ("checks_requested", "checks_on_time", "checks_failed")
            table = sa.table("cases", sa.column("id", sa.Uuid()), *(sa.column(c, sa.Integer()) for c in counts))
            row = (await connection.execute(sa.select(*table.c[1:]).where(table.c.id == checked))).one()
            assert tuple(row) == (0, 0, 0)
    finally:
        for engine in engines.values():
            await engine.dispose()

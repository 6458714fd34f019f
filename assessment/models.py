"""The assessment service's tables, in its own schema ``assessment``."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, Index, String, Table, Uuid

from shared.city.indicators import COUNTERS
from shared.messaging.tables import positions_table, service_metadata

metadata = service_metadata()

# The compact state of every case the stream has seen (a report that never became a case too).
case_states = Table(
    "case_states",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("state", JSON, nullable=False),
)

# One row per scope and period bucket, one column per base counter: a query reads a row, a
# ranking reads one row per ranked scope, however many cases there are.
counters = Table(
    "counters",
    metadata,
    Column("scope_kind", String(16), primary_key=True),
    Column("scope_id", String(64), primary_key=True),
    Column("period_kind", String(8), primary_key=True),
    Column("period_start", Date, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in COUNTERS),
)

# Rankings read every scope of one kind in one period.
Index("ix_counters_ranking", counters.c.scope_kind, counters.c.period_kind, counters.c.period_start)

positions = positions_table(metadata)

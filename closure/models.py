"""The closure service's tables, in its own schema ``closure``."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, Uuid, false

from shared.db.engine import UTCDateTime
from shared.db.rows import Rows
from shared.messaging.tables import service_metadata

metadata = service_metadata()

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_number", String(32), nullable=False),
    Column("category_code", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    Column("cell_id", String(32), nullable=False),
    Column("inspector_id", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    Column("department_id", String(64), nullable=True),
    Column("handling_deadline", UTCDateTime, nullable=True),
    # Deadlines counted on a provisional calendar year; a running one is counted again when the
    # year's official days are loaded (the check deadline here, the handling deadline by dispatch).
    Column("handling_deadline_provisional", Boolean, nullable=False, server_default=false()),
    Column("handled_at", UTCDateTime, nullable=True),
    Column("handling_result", Text, nullable=True),
    Column("check_deadline", UTCDateTime, nullable=True),
    Column("check_deadline_provisional", Boolean, nullable=False, server_default=false()),
    # Set when the check timer reported the open check past its deadline; cleared by the answer.
    Column("check_missed_at", UTCDateTime, nullable=True),
    Column("checks", Integer, nullable=False),  # check tasks answered
    # What the assessment counts of the check tasks (核查): requested, answered within their
    # limit (按时核查), and failed (返工).
    Column("checks_requested", Integer, nullable=False, server_default="0"),
    Column("checks_on_time", Integer, nullable=False, server_default="0"),
    Column("checks_failed", Integer, nullable=False, server_default="0"),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("on_time", Boolean, nullable=True),
    # Times the case was reopened for rework after an unsatisfied callback (回访不满意): the
    # assessment counts a reopened case reworked (返工).
    Column("reopens", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_closure_checks", cases.c.inspector_id, cases.c.status)
# The check timer scans the open checks by deadline; led by the status, the scan skips the closed
# cases, so it stays cheap however many there are.
Index("ix_closure_check_timer", cases.c.status, cases.c.check_missed_at, cases.c.check_deadline)

# The case rows by id, for the handlers (load, save) and the queries (get one, export pages).
CASES = Rows(cases, "case")

"""The dispatch service's tables, in its own schema ``dispatch``."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text, Uuid, false

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
    Column("cell_id", String(32), nullable=False),
    Column("community_id", String(32), nullable=False),
    Column("street_id", String(32), nullable=False),
    Column("district_id", String(32), nullable=False),
    Column("status", String(24), nullable=False),
    Column("department_id", String(64), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("rule_id", String(64), nullable=True),
    Column("dispatched_at", UTCDateTime, nullable=True),
    Column("accepted", Boolean, nullable=False),
    Column("handling_deadline", UTCDateTime, nullable=True),
    # Counted on a provisional calendar year: counted again when its official days are loaded.
    Column("handling_deadline_provisional", Boolean, nullable=False, server_default=false()),
    # How the handling deadline was set, so it can be counted again: the date an approved
    # extension granted (null: the category's limit from dispatched_at), and the suspensions since
    # as [from, to] pairs in ISO 8601.
    Column("granted_deadline", UTCDateTime, nullable=True),
    Column("pauses", JSON, nullable=False, server_default="[]"),
    # Set when the timer reported the deadline missed; cleared when the deadline moves.
    Column("deadline_missed_at", UTCDateTime, nullable=True),
    Column("suspended_at", UTCDateTime, nullable=True),
    Column("extension_deadline", UTCDateTime, nullable=True),
    Column("extension_reason", Text, nullable=True),
    Column("extension_requested_by", String(64), nullable=True),
    Column("supervision_level", Integer, nullable=False),
    # The dispatch limit from filing (按时派遣 compares the first dispatch with it).
    Column("dispatch_deadline", UTCDateTime, nullable=True),
    Column("dispatch_deadline_provisional", Boolean, nullable=False, server_default=false()),
    Column("filed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
# The deadline timer scans open cases by deadline; led by the status, the scan skips the closed
# cases, so it stays cheap however many there are.
Index("ix_dispatch_cases_timer", cases.c.status, cases.c.deadline_missed_at, cases.c.handling_deadline)
# The queues by status, oldest filed first in keyset pages (filed_at, id).
Index("ix_dispatch_cases_status_filed", cases.c.status, cases.c.filed_at, cases.c.id)

# The cases by id, for the handlers' writes and the queries' reads alike.
CASES = Rows(cases, "case")

# Every dispatch attempt (派遣) of a case, and whether dispatch accepted the department's return
# (回退): the case row holds only the latest, the assessment counts each one to its department.
assignments = Table(
    "assignments",
    metadata,
    Column("case_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("dispatched_at", UTCDateTime, nullable=False),
    Column("returned_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("case_id", "attempt"),
)

"""The intake service's tables, in its own schema ``intake``."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint, Uuid, false

from shared.db.engine import BigIntPK, UTCDateTime
from shared.messaging.tables import service_metadata

metadata = service_metadata()

reports = Table(
    "reports",
    metadata,
    Column("id", Uuid, primary_key=True),  # becomes the case id when filed
    Column("source", String(16), nullable=False),
    Column("reporter_id", String(64), nullable=True),
    # The reporter's own id for the report, so a phone that resends after a timeout is answered
    # with the first report instead of filing a second one.
    Column("client_ref", String(64), nullable=True),
    Column("external_ref", String(64), nullable=True),
    Column("category_code", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("cell_id", String(32), nullable=False),
    Column("community_id", String(32), nullable=False),
    Column("street_id", String(32), nullable=False),
    Column("district_id", String(32), nullable=False),
    Column("photos", JSON, nullable=False),
    Column("self_handled", Boolean, nullable=False),
    Column("status", String(24), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("verifier_id", String(64), nullable=True),
    Column("verification_due_at", UTCDateTime, nullable=True),
    # Deadlines counted on a provisional calendar year; a running one is counted again when the
    # year's official days are loaded.
    Column("verification_due_provisional", Boolean, nullable=False, server_default=false()),
    Column("case_number", String(32), nullable=True, unique=True),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    # When filed: the filing limit the case ran against (按时立案 compares decided_at with it).
    Column("filing_deadline", UTCDateTime, nullable=True),
    Column("filing_deadline_provisional", Boolean, nullable=False, server_default=false()),
    Column("merged_into", Uuid, nullable=True),
    Column("rejection_code", String(32), nullable=True),
    Column("rejection_reason", Text, nullable=True),
    UniqueConstraint("reporter_id", "client_ref", name="uq_reports_client_ref"),
)
Index("ix_reports_status", reports.c.status)
Index("ix_reports_verifier", reports.c.verifier_id, reports.c.status)

# The case file as the command center sees it, kept current from every service's events.
cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_number", String(32), nullable=False, unique=True),
    Column("category_code", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("cell_id", String(32), nullable=False),
    Column("street_id", String(32), nullable=False),
    Column("district_id", String(32), nullable=False),
    Column("status", String(24), nullable=False),
    Column("status_before_suspension", String(24), nullable=True),
    Column("reported_at", UTCDateTime, nullable=False),
    Column("filed_at", UTCDateTime, nullable=False),
    Column("department_id", String(64), nullable=True),
    Column("handling_deadline", UTCDateTime, nullable=True),
    Column("handling_deadline_provisional", Boolean, nullable=False, server_default=false()),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("external_ref", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
# Duplicate detection looks for open cases of one category near a point.
Index("ix_cases_open_category", cases.c.category_code, cases.c.status, cases.c.lat)
# The case search reads newest first in keyset pages (filed_at, id): on its own for the command
# center, within a department for a department's view, within a district or a status for the
# console's usual filters.
Index("ix_cases_filed", cases.c.filed_at, cases.c.id)
Index("ix_cases_department_filed", cases.c.department_id, cases.c.filed_at, cases.c.id)
Index("ix_cases_district_filed", cases.c.district_id, cases.c.filed_at, cases.c.id)
Index("ix_cases_status_filed", cases.c.status, cases.c.filed_at, cases.c.id)
# A case number's beginning (LIKE 'prefix%'): PostgreSQL's ordinary B-tree serves LIKE only under
# the C collation; the pattern operator class serves it under any.
Index("ix_cases_number_prefix", cases.c.case_number, postgresql_ops={"case_number": "varchar_pattern_ops"})

timeline = Table(
    "timeline",
    metadata,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("case_id", Uuid, nullable=False, index=True),
    Column("event_id", Uuid, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("service", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", Text, nullable=True),
    Column("details", JSON, nullable=False),
    UniqueConstraint("case_id", "event_id", name="uq_timeline_event"),
)

case_number_counters = Table(
    "case_number_counters",
    metadata,
    Column("period", String(7), primary_key=True),  # YYYY-MM in the city's time zone
    Column("last", Integer, nullable=False),
)

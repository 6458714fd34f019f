"""The handling service's tables, in its own schema ``handling``."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, String, Table, Text, Uuid, false

from shared.db.engine import UTCDateTime
from shared.db.rows import Rows
from shared.messaging.tables import service_metadata

metadata = service_metadata()

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_number", String(32), nullable=True),
    Column("category_code", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("cell_id", String(32), nullable=False),
    Column("street_id", String(32), nullable=False),
    Column("district_id", String(32), nullable=False),
    Column("report_photos", JSON, nullable=False),
    Column("status", String(24), nullable=False),
    Column("status_before_suspension", String(24), nullable=True),
    Column("department_id", String(64), nullable=True),
    Column("dispatched_at", UTCDateTime, nullable=True),
    Column("handling_deadline", UTCDateTime, nullable=True),
    # Counted on a provisional calendar year: dispatch counts it again when the official days come.
    Column("handling_deadline_provisional", Boolean, nullable=False, server_default=false()),
    Column("extension_deadline", UTCDateTime, nullable=True),
    Column("accepted_by", String(64), nullable=True),
    Column("result", Text, nullable=True),
    Column("result_photos", JSON, nullable=True),
    Column("handled_at", UTCDateTime, nullable=True),
    # The first report back (处置反馈) ever: handled_at starts again with every dispatch, but a
    # case reported handled once counts as handled for the assessment whatever comes after.
    Column("first_handled_at", UTCDateTime, nullable=True),
    Column("rework_reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_handling_inbox", cases.c.department_id, cases.c.status, cases.c.handling_deadline)

# The cases by id, for the handlers' writes and the queries' reads alike.
CASES = Rows(cases, "case")

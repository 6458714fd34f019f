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
    # The media an Open311 app named with the report (its ``media_url``), as given: never fetched.
    Column("media_url", String(2048), nullable=True),
    UniqueConstraint("reporter_id", "client_ref", name="uq_reports_client_ref"),
)
# The work queues by status, oldest received first in keyset pages (received_at, id).
Index("ix_reports_status_received", reports.c.status, reports.c.received_at, reports.c.id)
Index("ix_reports_verifier", reports.c.verifier_id, reports.c.status)
# The work orders merged into a case, which hear of it when it closes (intake.case_file): few
# reports are merged, so only those are indexed.
Index(
    "ix_reports_merged_into",
    reports.c.merged_into,
    postgresql_where=reports.c.merged_into.is_not(None),
    sqlite_where=reports.c.merged_into.is_not(None),
)

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
    # The department's latest report back (处置反馈), for the reply a hotline gets at closure.
    Column("handled_result", Text, nullable=True),
    Column("handled_photos", JSON, nullable=True),
    Column("handled_at", UTCDateTime, nullable=True),
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
# Open311's GET requests: the cases reported in a range, newest first.
Index("ix_cases_reported", cases.c.reported_at, cases.c.id)

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
# Open311's servicerequestupdates: the steps in a range of time, in the order they happened.
Index("ix_timeline_at", timeline.c.at, timeline.c.seq)

case_number_counters = Table(
    "case_number_counters",
    metadata,
    Column("period", String(7), primary_key=True),  # YYYY-MM in the city's time zone
    Column("last", Integer, nullable=False),
)

# What intake sends to the hotlines' and departments' systems (intake.delivery): one row per
# message, sent in ``seq`` order per endpoint and case. ``state``: pending (due at
# ``next_attempt_at``), delivered, or dead (given up, with the reason, until redriven). A sender
# holds a row it is sending until ``claimed_until``, under its own ``claim``.
deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("message_id", Uuid, nullable=False, unique=True),
    Column("endpoint", String(100), nullable=False),
    Column("case_id", Uuid, nullable=False),
    Column("kind", String(16), nullable=False),
    # The JSON the endpoint receives, as sent on every attempt (the signature covers these bytes).
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("first_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("claim", Uuid, nullable=True),
    # On the system clock, not the city's: the lease covers a request, which runs in real time.
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("dead_at", UTCDateTime, nullable=True),
    Column("dead_reason", Text, nullable=True),
    # A dead message an operator gave up on for good (intake.delivery.discard): who, when, why.
    Column("discarded_at", UTCDateTime, nullable=True),
    Column("discarded_by", String(100), nullable=True),
    Column("discard_reason", Text, nullable=True),
)
# The sender's look for due rows, and the operators' lists, read the undelivered rows only.
Index(
    "ix_deliveries_undelivered",
    deliveries.c.state,
    deliveries.c.next_attempt_at,
    postgresql_where=deliveries.c.state != "delivered",
    sqlite_where=deliveries.c.state != "delivered",
)
# The sender takes the soonest due rows of each endpoint in turn (a few per endpoint at once).
Index(
    "ix_deliveries_due",
    deliveries.c.endpoint,
    deliveries.c.next_attempt_at,
    postgresql_where=deliveries.c.state == "pending",
    sqlite_where=deliveries.c.state == "pending",
)
# A row waits while an earlier row of its endpoint and case is undelivered (per-case order).
Index("ix_deliveries_order", deliveries.c.endpoint, deliveries.c.case_id, deliveries.c.seq)
Index("ix_deliveries_delivered_at", deliveries.c.delivered_at)

# --- what the hotlines send us, signed (intake.api's /hotline/{hotline_id}/... routes) ----------

# The citizen's contact a hotline gives with a work order (the phone number to call back), kept
# apart from the report: it goes into no event, export, timeline, response or log, and a
# report's row can be read, exported and shown without it.
report_contacts = Table(
    "report_contacts",
    metadata,
    Column("report_id", Uuid, primary_key=True),
    # An Open311 app's first_name and last_name (50 characters each) join with a space.
    Column("name", String(101), nullable=True),
    Column("phone", String(32), nullable=True),
    # What else an Open311 app may send about the citizen: written down, never answered back.
    Column("email", String(254), nullable=True),
    Column("device_id", String(128), nullable=True),
    Column("account_id", String(128), nullable=True),
)

# The nonces of signed requests taken (the ``webhook-id`` or ``X-Nonce``), written in the request's
# own transaction: a replay within the signature's window is refused, a Standard Webhooks retry
# (same id, same body) answered as the first time. Kept as long as a request signed with them could
# still be fresh; ``body_sha256`` tells a retry from a replay.
hotline_nonces = Table(
    "hotline_nonces",
    metadata,
    Column("hotline_id", String(32), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)
Index("ix_hotline_nonces_seen", hotline_nonces.c.hotline_id, hotline_nonces.c.seen_at)

# The citizen's verdicts on closed cases, as the hotlines' callbacks (回访) gave them; the latest of
# a case is its verdict (the reports export carries it for the batch recount of satisfaction).
# ``nonce``: the request's, so the same callback sent again is recognised after its nonce is pruned.
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("hotline_id", String(32), nullable=False),
    Column("work_order", String(64), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("verdict", String(24), nullable=False),
    Column("note", Text, nullable=True),
    # The hotline's own number for the callback, when it gives one: its resends are one callback.
    Column("callback_id", String(64), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("hotline_id", "nonce", name="uq_callbacks_nonce"),
)
Index("uq_callbacks_callback_id", callbacks.c.hotline_id, callbacks.c.callback_id, unique=True)
Index("ix_callbacks_case", callbacks.c.case_id, callbacks.c.received_at)
# A callback names the hotline's work order: found by the hotline and its number.
Index("ix_reports_work_order", reports.c.reporter_id, reports.c.external_ref)

# --- the citizen apps that post Open311 requests (intake.open311) -----------------------------

# One row per key issued to a citizen app: the key itself is shown once, when issued, and only its
# SHA-256 is kept (the key is 256 random bits, so its hash needs no slow, salted function: there is
# no dictionary of likely keys to try). A revoked key stays, so the list says when it stopped.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("application", String(64), nullable=False),
    Column("key_sha256", String(64), nullable=False),
    Column("per_minute", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
)

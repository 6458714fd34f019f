"""Reports, the case file and its timeline.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_number_counters",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=False),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("status_before_suspension", sa.String(length=24), nullable=True),
        sa.Column("reported_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("filed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("handling_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("updated_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_number"),
    )
    op.create_index("ix_cases_open_category", "cases", ["category_code", "status", "lat"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reporter_id", sa.String(length=64), nullable=True),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=32), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("self_handled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("received_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verifier_id", sa.String(length=64), nullable=True),
        sa.Column("verification_due_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("case_number", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("rejection_code", sa.String(length=32), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_number"),
        sa.UniqueConstraint("reporter_id", "client_ref", name="uq_reports_client_ref"),
    )
    op.create_index("ix_reports_status", "reports", ["status"], unique=False)
    op.create_index("ix_reports_verifier", "reports", ["verifier_id", "status"], unique=False)
    op.create_table(
        "timeline",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("case_id", "event_id", name="uq_timeline_event"),
    )
    op.create_index(op.f("ix_timeline_case_id"), "timeline", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_timeline_case_id"), table_name="timeline")
    op.drop_table("timeline")
    op.drop_index("ix_reports_verifier", table_name="reports")
    op.drop_index("ix_reports_status", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_cases_open_category", table_name="cases")
    op.drop_table("cases")
    op.drop_table("case_number_counters")

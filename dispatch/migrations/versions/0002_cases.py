"""Dispatch's cases: department, deadline, extension, suspension, supervision.

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
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=False),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=32), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("dispatched_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("handling_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deadline_missed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("suspended_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extension_requested_by", sa.String(length=64), nullable=True),
        sa.Column("supervision_level", sa.Integer(), nullable=False),
        sa.Column("filed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dispatch_cases_status", "cases", ["status"], unique=False)
    op.create_index("ix_dispatch_cases_timer", "cases", ["deadline_missed_at", "handling_deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dispatch_cases_timer", table_name="cases")
    op.drop_index("ix_dispatch_cases_status", table_name="cases")
    op.drop_table("cases")

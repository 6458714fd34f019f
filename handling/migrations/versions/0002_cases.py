"""Handling's cases: each department's inbox and what it did.

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
        sa.Column("case_number", sa.String(length=32), nullable=True),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("street_id", sa.String(length=32), nullable=False),
        sa.Column("district_id", sa.String(length=32), nullable=False),
        sa.Column("report_photos", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("status_before_suspension", sa.String(length=24), nullable=True),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("dispatched_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handling_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=64), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("result_photos", sa.JSON(), nullable=True),
        sa.Column("handled_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rework_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_handling_inbox", "cases", ["department_id", "status", "handling_deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_handling_inbox", table_name="cases")
    op.drop_table("cases")

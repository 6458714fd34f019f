"""Closure's cases: check tasks, closure and on-time verdicts.

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
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("cell_id", sa.String(length=32), nullable=False),
        sa.Column("inspector_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("handling_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handling_result", sa.Text(), nullable=True),
        sa.Column("check_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("closed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("updated_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_closure_checks", "cases", ["inspector_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_closure_checks", table_name="cases")
    op.drop_table("cases")

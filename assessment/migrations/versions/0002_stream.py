"""The stream's state: per-case states, counters per scope and period, consumer positions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copy of the counters at this revision: later ones add columns in their own migrations.
COUNTERS = (
    "reports",
    "filed",
    "filed_on_time",
    "cases_dispatched",
    "dispatched_on_time",
    "dispatches",
    "returns",
    "handled",
    "reworked",
    "checks_requested",
    "checks_on_time",
    "closed",
    "closed_on_time",
    "overdue_open",
    "cancelled",
)


def upgrade() -> None:
    op.create_table(
        "case_states",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "counters",
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("scope_kind", "scope_id", "period_kind", "period_start"),
    )
    op.create_index("ix_counters_ranking", "counters", ["scope_kind", "period_kind", "period_start"])
    op.create_table(
        "consumer_positions",
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "topic", "partition"),
    )


def downgrade() -> None:
    op.drop_table("consumer_positions")
    op.drop_index("ix_counters_ranking", table_name="counters")
    op.drop_table("counters")
    op.drop_table("case_states")

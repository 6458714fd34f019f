"""The check timer: when an open check passed its deadline unanswered, and the index its scan reads.

Checks already open past their deadline are reported at the timer's first tick.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("check_missed_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_closure_check_timer", "cases", ["status", "check_missed_at", "check_deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_closure_check_timer", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("check_missed_at")

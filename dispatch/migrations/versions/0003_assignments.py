"""Each dispatch attempt and its return, and the dispatch deadline, for the batch recount.

Cases dispatched before this revision have no history here and no dispatch deadline.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("dispatch_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "assignments",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("dispatched_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("returned_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", "attempt"),
    )


def downgrade() -> None:
    op.drop_table("assignments")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("dispatch_deadline")

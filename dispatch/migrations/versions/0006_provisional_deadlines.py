"""Deadlines counted on a provisional calendar year are marked so, and a handling deadline keeps
how it was set (the granted extension date, the suspensions since) so it can be counted again.

A deadline set before this revision was counted on official days (a year without them was an
error then): it is not provisional, and it counts as granted as it stands, so resuming a case
suspended before the upgrade moves it exactly as before.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("handling_deadline_provisional", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("dispatch_deadline_provisional", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("granted_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pauses", sa.JSON(), nullable=False, server_default="[]"))
    op.execute("UPDATE cases SET granted_deadline = handling_deadline WHERE handling_deadline IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("pauses")
        batch.drop_column("granted_deadline")
        batch.drop_column("dispatch_deadline_provisional")
        batch.drop_column("handling_deadline_provisional")

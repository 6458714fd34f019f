"""Deadlines counted on a provisional calendar year are marked so: the check deadline, and the
handling deadline dispatch set.

Deadlines set before this revision were counted on official days (a year without them was an
error then): none is provisional.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_FLAGS = ("handling_deadline_provisional", "check_deadline_provisional")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for flag in _FLAGS:
            batch.add_column(sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for flag in _FLAGS:
            batch.drop_column(flag)

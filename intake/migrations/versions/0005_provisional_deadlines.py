"""Deadlines counted on a provisional calendar year are marked so: the verification due time and
the filing deadline of a report, the handling deadline in the case file.

Deadlines set before this revision were counted on official days (a year without them was an
error then): none is provisional.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FLAGS = {
    "reports": ("verification_due_provisional", "filing_deadline_provisional"),
    "cases": ("handling_deadline_provisional",),
}


def upgrade() -> None:
    for table, flags in _FLAGS.items():
        with op.batch_alter_table(table) as batch:
            for flag in flags:
                batch.add_column(sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table, flags in _FLAGS.items():
        with op.batch_alter_table(table) as batch:
            for flag in flags:
                batch.drop_column(flag)

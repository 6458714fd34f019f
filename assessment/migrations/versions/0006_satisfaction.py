"""Satisfaction (满意率): the cases the hotline called the citizen back about (回访), and those whose
latest verdict was satisfied or basically satisfied.

Both start at zero: no callback reached citycase before this revision, so no counter row is missing
one.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COUNTERS = ("callbacks", "satisfied")


def upgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        for name in reversed(_COUNTERS):
            batch.drop_column(name)

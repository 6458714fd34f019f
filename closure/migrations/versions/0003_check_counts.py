"""Per case, how many check tasks were requested, answered on time, and failed.

Cases checked before this revision start from zero.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COUNTS = ("checks_requested", "checks_on_time", "checks_failed")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name in _COUNTS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name in reversed(_COUNTS):
            batch.drop_column(name)

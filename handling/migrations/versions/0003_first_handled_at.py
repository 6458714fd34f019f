"""When a case was first reported handled, which a re-dispatch does not forget.

Cases reported handled before this revision start from their current handled_at.

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
        batch.add_column(sa.Column("first_handled_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE cases SET first_handled_at = handled_at")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("first_handled_at")

"""Reports keep the filing deadline they were filed against (the batch recount of 按时立案 needs it).

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
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("filing_deadline", shared.db.engine.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("filing_deadline")

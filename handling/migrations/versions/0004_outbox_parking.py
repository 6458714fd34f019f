"""The handling outbox can park a row the bus refuses for good (too large, its topic missing or
forbidden), so the rows behind it are published instead of waiting for it forever.

Revision ID: 0004
Revises: 0003
"""

from shared.db.migrations import add_outbox_parking_v1, drop_outbox_parking_v1

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_parking_v1()


def downgrade() -> None:
    drop_outbox_parking_v1()

"""The dispatch outbox can park a row the bus refuses for good (too large, its topic missing or
forbidden), so the rows behind it are published instead of waiting for it forever.

Revision ID: 0005
Revises: 0004
"""

from shared.db.migrations import add_outbox_parking_v1, drop_outbox_parking_v1

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_parking_v1()


def downgrade() -> None:
    drop_outbox_parking_v1()

"""The dispatcher's queues (GET /dispatch/queue?status=...) read in keyset pages, oldest filed
first, ties by id: the status index gains the order, so a page is found by walking the index from
the last position instead of sorting every case of the status (every dispatched one, for
``status=dispatched``). The status alone is the new index's first column, so the old index is
dropped, not kept beside it.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dispatch_cases_status_filed", "cases", ["status", "filed_at", "id"])
    op.drop_index("ix_dispatch_cases_status", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_dispatch_cases_status", "cases", ["status"])
    op.drop_index("ix_dispatch_cases_status_filed", table_name="cases")

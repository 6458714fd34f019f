"""The work queues of reports (GET /intake/reports?status=...) read in keyset pages, oldest
received first, ties by id: the status index gains the order, so a page is found by walking the
index from the last position instead of sorting every report of the status (all the filed ones,
a year's worth, for ``status=filed``). The status alone is the new index's first column, so the
old index is dropped, not kept beside it.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reports_status_received", "reports", ["status", "received_at", "id"])
    op.drop_index("ix_reports_status", table_name="reports")


def downgrade() -> None:
    op.create_index("ix_reports_status", "reports", ["status"])
    op.drop_index("ix_reports_status_received", table_name="reports")

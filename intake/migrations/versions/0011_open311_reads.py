"""Indexes for Open311's reads (intake.open311): ``GET requests`` asks for the cases reported in a
range of at most 90 days, newest first (``reported_at``: the spec's ``requested_datetime``), and
``GET servicerequestupdates``, polled by citizen apps, for the case file's steps in a range of
time (``timeline.at``): without them each poll reads the whole table.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_reported", "cases", ["reported_at", "id"])
    op.create_index("ix_timeline_at", "timeline", ["at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_timeline_at", "timeline")
    op.drop_index("ix_cases_reported", "cases")

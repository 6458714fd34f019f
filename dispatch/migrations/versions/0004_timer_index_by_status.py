"""The deadline timer's index leads with the status, so the scan skips closed cases.

Led by the missed-deadline mark and the deadline alone, the index also held every case closed
before its deadline (never marked, deadline long past): the timer read nearly the whole table on
every tick, a year of cases in a busy city.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_dispatch_cases_timer", table_name="cases")
    op.create_index(
        "ix_dispatch_cases_timer", "cases", ["status", "deadline_missed_at", "handling_deadline"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dispatch_cases_timer", table_name="cases")
    op.create_index("ix_dispatch_cases_timer", "cases", ["deadline_missed_at", "handling_deadline"], unique=False)

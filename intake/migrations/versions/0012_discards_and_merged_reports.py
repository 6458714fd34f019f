"""Deliveries an operator discards (``intake.delivery.discard``): a dead message its endpoint will
never take is marked ``discarded`` with who, when and why, and no longer holds its case's later
messages back. The sender's lease (``claimed_until``) is on the system clock from now on, no
longer the city's: leases taken before are handed back (a simulated city's clock may be days ahead
of the system's, and such a lease would hold its row that long); a row a sender of the old version
was sending at that moment may then go out twice, under its one idempotency key, as after any
sender's crash. The sender takes a few due rows of each endpoint at once: an index of the due rows
per endpoint. And an index of the reports merged into a case: the case file reads them when the
case closes, to tell their hotlines.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_MERGED = sa.text("merged_into IS NOT NULL")
_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("discarded_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("discarded_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("discard_reason", sa.Text(), nullable=True))
    op.execute("UPDATE deliveries SET claim = NULL, claimed_until = NULL WHERE claim IS NOT NULL")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["endpoint", "next_attempt_at"],
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )
    op.create_index(
        "ix_reports_merged_into",
        "reports",
        ["merged_into"],
        postgresql_where=_MERGED,
        sqlite_where=_MERGED,
    )


def downgrade() -> None:
    op.drop_index("ix_reports_merged_into", "reports")
    op.drop_index("ix_deliveries_due", "deliveries")
    # A discarded message is dead again: the revision before knows no other way to give up on one.
    op.execute("UPDATE deliveries SET state = 'dead' WHERE state = 'discarded'")
    with op.batch_alter_table("deliveries") as batch:
        for column in ("discard_reason", "discarded_by", "discarded_at"):
            batch.drop_column(column)

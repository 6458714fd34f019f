"""What intake sends to the hotlines' and departments' systems: the ``deliveries`` table (one row per
message, its schedule, attempts and outcome), and in the case file the department's latest report
back, for the reply a hotline gets when the case closes.

Cases handled before this revision have no report back on file: a reply sent for one of them says
no result (nothing was sent to a hotline before this revision anyway).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UNDELIVERED = sa.text("state <> 'delivered'")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("handled_result", sa.Text(), nullable=True))
        batch.add_column(sa.Column("handled_photos", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("handled_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "deliveries",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim", sa.Uuid(), nullable=True),
        sa.Column("claimed_until", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dead_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dead_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(
        "ix_deliveries_undelivered",
        "deliveries",
        ["state", "next_attempt_at"],
        postgresql_where=_UNDELIVERED,
        sqlite_where=_UNDELIVERED,
    )
    op.create_index("ix_deliveries_order", "deliveries", ["endpoint", "case_id", "seq"])
    op.create_index("ix_deliveries_delivered_at", "deliveries", ["delivered_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    with op.batch_alter_table("cases") as batch:
        for column in ("handled_at", "handled_photos", "handled_result"):
            batch.drop_column(column)

"""What the hotlines send us, signed: the citizen's contact kept apart from the report
(``report_contacts``), the nonces of signed requests taken (``hotline_nonces``, against replays),
and the citizen's verdicts on closed cases (``callbacks``, 回访), which find a case by the
hotline's work order number (``ix_reports_work_order``).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_contacts",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_table(
        "hotline_nonces",
        sa.Column("hotline_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("seen_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hotline_id", "nonce"),
    )
    op.create_index("ix_hotline_nonces_seen", "hotline_nonces", ["hotline_id", "seen_at"])
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("hotline_id", sa.String(length=32), nullable=False),
        sa.Column("work_order", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("received_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hotline_id", "nonce", name="uq_callbacks_nonce"),
    )
    op.create_index("ix_callbacks_case", "callbacks", ["case_id", "received_at"])
    op.create_index("ix_reports_work_order", "reports", ["reporter_id", "external_ref"])


def downgrade() -> None:
    op.drop_index("ix_reports_work_order", "reports")
    op.drop_table("callbacks")
    op.drop_index("ix_hotline_nonces_seen", "hotline_nonces")
    op.drop_table("hotline_nonces")
    op.drop_table("report_contacts")

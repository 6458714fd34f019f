"""Open311 GeoReport v2's write side: the API keys of the citizen apps that post requests
(``api_keys``, each key stored as its SHA-256 with the application it was issued to, its rate
limit per minute, and when it was revoked); the address of the media such an app may name with a
report (``reports.media_url``); and the contact fields it may send, kept apart from the report
with the hotline's (``report_contacts``: email, device and account ids, and room for a first and
a last name).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import shared.db.engine

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application", sa.String(length=64), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", shared.db.engine.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shared.db.engine.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("media_url", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("report_contacts") as batch:
        batch.alter_column("name", existing_type=sa.String(length=50), type_=sa.String(length=101))
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("device_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("account_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_contacts") as batch:
        batch.drop_column("account_id")
        batch.drop_column("device_id")
        batch.drop_column("email")
        batch.alter_column("name", existing_type=sa.String(length=101), type_=sa.String(length=50))
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("media_url")
    op.drop_table("api_keys")

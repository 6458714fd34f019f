"""The hotline's own number for a callback (``callback_id``): a resend under it is the same
callback whatever its nonce, since an app-key sender signs each attempt with a new one. Unique per
hotline where given (an index, not a constraint: SQLite adds one without rebuilding the table, and
both databases let any number of rows leave it empty).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("callbacks", sa.Column("callback_id", sa.String(64), nullable=True))
    op.create_index("uq_callbacks_callback_id", "callbacks", ["hotline_id", "callback_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_callbacks_callback_id", "callbacks")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("callback_id")

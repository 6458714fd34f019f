"""Room on every page for the stream's updates: a counter row is rewritten by every batch that
touches its scope, and with free space on its page PostgreSQL rewrites it in place (a HOT update)
instead of writing new entries in both of the table's indexes. Measured on the stream's replay
(bench/README.md). SQLite has no such setting.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE counters SET (fillfactor = 70)")
        op.execute("ALTER TABLE case_states SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE counters RESET (fillfactor)")
        op.execute("ALTER TABLE case_states RESET (fillfactor)")

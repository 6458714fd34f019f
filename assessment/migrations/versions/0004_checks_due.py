"""The readings DOMAIN.md pins for checks and dispatch.

- ``checks_due``: the checks due (answered, or open past their limit), the denominator of the
  on-time check rate in place of the checks requested. It starts at zero: the checks answered
  before this revision are counted by a rebuild (``python -m services assessment rebuild``), which
  replays them under the new rule.
- On-time dispatch is the command center's figure, not a department's: the department rows lose
  ``cases_dispatched`` and ``dispatched_on_time``, as the stream no longer adds them there.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOT_FOR_DEPARTMENTS = ("cases_dispatched", "dispatched_on_time")


def upgrade() -> None:
    with op.batch_alter_table("counters") as batch:
        batch.add_column(sa.Column("checks_due", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        f"UPDATE counters SET {', '.join(f'{name} = 0' for name in _NOT_FOR_DEPARTMENTS)}"
        " WHERE scope_kind = 'department'"
    )


def downgrade() -> None:
    # The department rows' dispatch counters are not restored: a rebuild under the old rules does.
    with op.batch_alter_table("counters") as batch:
        batch.drop_column("checks_due")

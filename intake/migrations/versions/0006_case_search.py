"""Indexes for the search of the case file (GET /intake/cases): newest first in keyset pages,
alone or within a department, a district or a status, and by a case number's beginning.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEYSET = ["filed_at", "id"]
_INDEXES = {
    "ix_cases_filed": _KEYSET,
    "ix_cases_department_filed": ["department_id", *_KEYSET],
    "ix_cases_district_filed": ["district_id", *_KEYSET],
    "ix_cases_status_filed": ["status", *_KEYSET],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "cases", columns)
    op.create_index(
        "ix_cases_number_prefix", "cases", ["case_number"], postgresql_ops={"case_number": "varchar_pattern_ops"}
    )


def downgrade() -> None:
    op.drop_index("ix_cases_number_prefix", "cases")
    for name in reversed(_INDEXES):
        op.drop_index(name, "cases")

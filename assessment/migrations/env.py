"""Alembic environment of the assessment schema."""

from assessment.models import metadata
from shared.db.migrations import run_migrations

run_migrations(metadata)

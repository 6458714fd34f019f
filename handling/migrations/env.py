"""Alembic environment of the handling schema."""

from handling.models import metadata
from shared.db.migrations import run_migrations

run_migrations(metadata)

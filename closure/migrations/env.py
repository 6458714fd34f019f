"""Alembic environment of the closure schema."""

from closure.models import metadata
from shared.db.migrations import run_migrations

run_migrations(metadata)

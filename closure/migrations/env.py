"""Alembic environment of the closure schema."""

from closure.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)

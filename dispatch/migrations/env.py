"""Alembic environment of the dispatch schema."""

from dispatch.models import metadata
from shared.db.migrations import run_migrations

run_migrations(metadata)

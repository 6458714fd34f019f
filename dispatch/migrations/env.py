"""Alembic environment of the dispatch schema."""

from dispatch.models import metadata
from shared.migrations import run_migrations

run_migrations(metadata)

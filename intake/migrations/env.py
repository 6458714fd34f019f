"""Alembic environment of the intake schema."""

from intake.models import metadata
from shared.db.migrations import run_migrations

run_migrations(metadata)

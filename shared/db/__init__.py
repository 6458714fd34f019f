"""Databases: engines for PostgreSQL and SQLite, column types, rows by id, Alembic migrations."""

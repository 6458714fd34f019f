"""Databases: engines for PostgreSQL and SQLite, column types, rows by id, keyset pages of a
list, Alembic migrations."""

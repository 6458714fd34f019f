"""Alembic, per service: each service's ``migrations/`` package versions its own schema.

Migrations run on the service's own connection, so on PostgreSQL they land in the service's
schema (the role's search path) and the version table sits beside its tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import BigIntPK, UTCDateTime


def alembic_config(service: str) -> Config:
    """The Alembic configuration of one service, with no ini file."""
    config = Config()
    config.set_main_option("script_location", f"{service}:migrations")
    return config


@dataclass(frozen=True)
class SchemaUpgrade:
    """What ``upgrade_to_head`` did to a service's schema: its revision before (``None``: a new
    schema) and after."""

    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before == self.after:
            return f"at {self.after}"
        return f"{self.before or 'new'} → {self.after}"


async def upgrade_to_head(service: str, engine: AsyncEngine) -> SchemaUpgrade:
    """Bring the service's schema to the newest revision."""
    config = alembic_config(service)

    def _upgrade(connection: Connection) -> SchemaUpgrade:
        if connection.dialect.name == "postgresql":
            # Replicas of a service start together; one migrates while the others wait for it.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"migrate.{service}"})
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return SchemaUpgrade(before, MigrationContext.configure(connection).get_current_revision())

    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade)


def run_migrations(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``: migrate on the connection ``upgrade_to_head`` gave."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `python -m services migrate`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def create_messaging_tables_v1() -> None:
    """The outbox and inbox as every service's first migration creates them (frozen: later
    changes to these tables are new migrations, not edits here).
    """
    op.create_table(
        "outbox",
        sa.Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(255), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )


def drop_messaging_tables_v1() -> None:
    """Undo ``create_messaging_tables_v1``."""
    op.drop_table("inbox")
    op.drop_table("outbox")


def add_outbox_parking_v1() -> None:
    """The outbox columns that let the relay park a row the bus refuses for good: its failed
    attempts, when it was parked and why (frozen, like ``create_messaging_tables_v1``).
    """
    op.add_column("outbox", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("outbox", sa.Column("parked_at", UTCDateTime(), nullable=True))
    op.add_column("outbox", sa.Column("park_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_outbox_parked",
        "outbox",
        ["topic", "key"],
        postgresql_where=sa.text("parked_at IS NOT NULL"),
        sqlite_where=sa.text("parked_at IS NOT NULL"),
    )


def drop_outbox_parking_v1() -> None:
    """Undo ``add_outbox_parking_v1``."""
    op.drop_index("ix_outbox_parked", table_name="outbox")
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("park_reason")
        outbox.drop_column("parked_at")
        outbox.drop_column("attempts")

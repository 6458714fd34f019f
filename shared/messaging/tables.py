"""The outbox and inbox tables every service has in its own schema."""

from __future__ import annotations

import base64

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, Uuid

from shared.db.engine import BigIntPK, UTCDateTime
from shared.messaging.bus.base import Headers


def outbox_table(metadata: MetaData) -> Table:
    """Messages committed with a state change and not yet (or already) published.

    ``seq`` orders publication; rows are published in ``seq`` order so a case's events reach the
    log in the order they were committed. A row the bus keeps refusing for good is parked
    (``parked_at``, ``park_reason``) after ``attempts`` tries: it waits for an operator, and the
    later rows of its topic and key wait behind it.
    """
    table = Table(
        "outbox",
        metadata,
        Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        Column("message_id", Uuid, nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("headers", JSON, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("parked_at", UTCDateTime, nullable=True),
        Column("park_reason", Text, nullable=True),
    )
    Index(
        "ix_outbox_unsent",
        table.c.seq,
        postgresql_where=table.c.sent_at.is_(None),
        sqlite_where=table.c.sent_at.is_(None),
    )
    Index("ix_outbox_sent_at", table.c.sent_at)
    Index(
        "ix_outbox_parked",
        table.c.topic,
        table.c.key,
        postgresql_where=table.c.parked_at.is_not(None),
        sqlite_where=table.c.parked_at.is_not(None),
    )
    return table


def inbox_table(metadata: MetaData) -> Table:
    """The ids of events a consumer has applied, written in the same transaction as the effect."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(255), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(255), nullable=False),
        Column("processed_at", UTCDateTime, nullable=False),
    )


def positions_table(metadata: MetaData) -> Table:
    """Where a consumer that keeps its own positions is in each partition: the next offset to
    apply, committed in the same transaction as the effects of the records before it.
    """
    return Table(
        "consumer_positions",
        metadata,
        Column("consumer", String(255), primary_key=True),
        Column("topic", String(255), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("next_offset", BigInteger, nullable=False),
    )


def headers_to_json(headers: Headers) -> list[list[str]]:
    """Message headers as JSON: text when they are UTF-8 (readable in the database), else base64."""
    encoded = []
    for name, value in headers:
        try:
            encoded.append([name, value.decode("utf-8")])
        except UnicodeDecodeError:
            encoded.append([name, base64.b64encode(value).decode("ascii"), "base64"])
    return encoded


def headers_from_json(stored: list[list[str]]) -> Headers:
    """The inverse of ``headers_to_json``."""
    return tuple((item[0], base64.b64decode(item[1]) if len(item) > 2 else item[1].encode("utf-8")) for item in stored)


def service_metadata() -> MetaData:
    """A service's ``MetaData``, holding its outbox and inbox; the service adds its own tables."""
    metadata = MetaData()
    outbox_table(metadata)
    inbox_table(metadata)
    return metadata

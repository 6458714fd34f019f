"""Identifiers: time-ordered UUIDs (version 7), so primary keys index well and sort by creation."""

from __future__ import annotations

from uuid import UUID

import uuid6


def new_id() -> UUID:
    """A fresh UUIDv7 (RFC 9562): 48 bits of milliseconds, then randomness."""
    return UUID(bytes=uuid6.uuid7().bytes)

"""The API keys of the citizen apps that post Open311 requests, and each key's rate limit.

A key is issued to one application by the command line (``python -m services open311 keys issue
NAME``), shown once, and kept only as its SHA-256. That is enough because the key is 256 random
bits: a slow, salted hash (Argon2, as for the city's passwords) protects secrets people choose,
which an attacker holding the table can guess from a dictionary; nobody can guess a random
256-bit key, so its plain digest reveals nothing, and an indexed digest finds the key in one
lookup per request instead of a deliberately slow verification against every row.

A revoked key stays in the table, refused, so the list still tells who had one and when it ended.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from limits import RateLimitItemPerSecond
from sqlalchemy import select, update

from intake.models import api_keys
from shared.core.errors import InvalidInput, NotFound
from shared.core.ids import new_id
from shared.messaging.store import ServiceStore
from shared.web.limits import RateLimits

# 32 bytes: 256 bits from the operating system's generator, written in 43 URL-safe characters.
KEY_BYTES = 32
# The span a key's limit counts requests over: a minute, the unit the limit is issued in.
WINDOW_SECONDS = 60
DEFAULT_PER_MINUTE = 60
# The report's reporter is the application, named apart from inspectors' ids and system accounts'
# usernames (which have no colon): no account can take an application's reports for its own.
REPORTER_PREFIX = "open311:"
APPLICATION_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z _.-]{0,55}")


@dataclass(frozen=True)
class ApiKey:
    """A key as the table keeps it: whose it is, its limit, when it was issued and revoked."""

    id: UUID
    application: str
    per_minute: int
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> ApiKey:
        """The key in a row of ``api_keys``."""
        return cls(row["id"], row["application"], row["per_minute"], row["created_at"], row["revoked_at"])

    @property
    def reporter_id(self) -> str:
        """Who the reports posted with this key are from."""
        return REPORTER_PREFIX + self.application


class KeyRefused(Exception):
    """The request names no key, a key nobody was issued, or a revoked one (403)."""


def digest(key: str) -> str:
    """The SHA-256 of a key, as the table keeps it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def issue(store: ServiceStore, application: str, per_minute: int = DEFAULT_PER_MINUTE) -> tuple[ApiKey, str]:
    """A new key for ``application``, allowed ``per_minute`` requests a minute: the key as kept,
    and the key itself (shown once: only its digest is kept)."""
    if not APPLICATION_NAME.fullmatch(application):
        raise InvalidInput(
            "an application's name: 1 to 56 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
            {"application": application},
        )
    if per_minute < 1:
        raise InvalidInput("a key's limit is 1 request a minute or more", {"per_minute": per_minute})
    key = secrets.token_urlsafe(KEY_BYTES)
    row: dict[str, Any] = {
        "id": new_id(),
        "application": application,
        "key_sha256": digest(key),
        "per_minute": per_minute,
        "created_at": store.clock.now(),
        "revoked_at": None,
    }
    async with store.transaction() as tx:
        await tx.connection.execute(api_keys.insert().values(row))
    return ApiKey.of(row), key


async def listed(store: ServiceStore) -> list[ApiKey]:
    """Every key issued, revoked ones too, oldest first."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    async with store.engine.connect() as connection:
        return [ApiKey.of(row) for row in (await connection.execute(query)).mappings()]


async def revoke(store: ServiceStore, key_id: UUID) -> ApiKey:
    """Refuse the key from now on; a key revoked before keeps its first revocation time.
    ``NotFound`` when no key has this id."""
    async with store.transaction() as tx:
        await tx.connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=store.clock.now())
        )
        row = (await tx.connection.execute(select(api_keys).where(api_keys.c.id == key_id))).mappings().first()
    if row is None:
        raise NotFound(f"no API key {key_id}", {"id": str(key_id)})
    return ApiKey.of(row)


async def admit(store: ServiceStore, rate_limits: RateLimits, key: str | None) -> ApiKey:
    """The key a request names, counted against its limit: ``KeyRefused`` for no key, an unknown
    or a revoked one; ``TooManyRequests`` (with its ``retry_after``) once the key has used up its
    requests of the last minute."""
    if not key:
        raise KeyRefused("api_key is required to post a service request")
    query = select(api_keys).where(api_keys.c.key_sha256 == digest(key))
    async with store.engine.connect() as connection:
        row = (await connection.execute(query)).mappings().first()
    if row is None:
        raise KeyRefused("api_key is not valid")
    if row["revoked_at"] is not None:
        raise KeyRefused("api_key has been revoked")
    admitted = ApiKey.of(row)
    rule = RateLimitItemPerSecond(admitted.per_minute, WINDOW_SECONDS)
    rate_limits.hit(rule, f"open311 key:{admitted.id}", "service requests with this api_key")
    return admitted

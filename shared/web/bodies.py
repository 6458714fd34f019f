"""Request bodies and fields that several services' routes take alike, with the bounds every
route keeps: text without control characters, dates the city's calendar can serve.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# The days the platform reasons about: the calendar serves these years (official data where
# published, the statutory rules otherwise); a date outside them is a client's mistake (422),
# not a deadline or a period anything could be computed for.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# C0 and C1 control characters but tab, line feed and carriage return: NUL cannot be stored by
# PostgreSQL at all, and the rest hide text from the people who read it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _printable(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError("text must not contain control characters")
    return text


def _iso_day(value: object) -> object:
    # Pydantic would read a number as a Unix time (``?date=0`` → 1970-01-01): only a written date counts.
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a date is written YYYY-MM-DD")
    if isinstance(value, int | float):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


def _served_day(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def _photo_digest(text: str) -> str:
    # Said in the platform's words: a client that sent a file name or a URL learns what to send.
    if not _DIGEST.fullmatch(text):
        raise ValueError("a photo is named by its digest: the 64 lowercase hex digits POST photos answered")
    return text


def _served_instant(instant: datetime) -> datetime:
    _served_day(instant.astimezone(UTC).date())
    return instant


# Free text a person typed: a description, a reason, a note, a result.
Text = Annotated[str, AfterValidator(_printable)]
# A calendar day from a query or a body, written YYYY-MM-DD, within the served years.
ServedDate = Annotated[date, BeforeValidator(_iso_day), AfterValidator(_served_day)]
# An instant with its offset, within the served years (a deadline asked for, for one).
ServedInstant = Annotated[AwareDatetime, AfterValidator(_served_instant)]

# A photo as the body of a report, a verification or a check names it: the content hash an
# upload answered with (``POST photos``).
PhotoDigest = Annotated[
    str,
    AfterValidator(_photo_digest),
    WithJsonSchema({"type": "string", "pattern": f"^{_DIGEST.pattern}$", "description": "a photo's SHA-256 digest"}),
]


class ReasonIn(BaseModel):
    """Why."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=1000)

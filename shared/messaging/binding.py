"""The CloudEvents Kafka protocol binding, binary mode: an event's attributes travel as ``ce_*``
headers, the payload as the JSON value, the case id (the CloudEvents ``subject``) as the key, so
a case's events share a partition and keep their order. The payload's schema version is the tail
of ``dataschema`` (``urn:citycase:event:case.filed:v1``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID

from pydantic import ValidationError

from shared.core.clock import rfc3339
from shared.events.catalogue import CATALOGUE, Catalogue, UnknownEventType
from shared.events.envelope import Event
from shared.messaging.bus import Message, Record

CONTENT_TYPE = "application/json"
_CONTENT_TYPE_HEADER = CONTENT_TYPE.encode()
_SCHEMA_PREFIX = "urn:citycase:event:"
_SCHEMA = re.compile(r"urn:citycase:event:(?P<type>[a-z_.]{1,100}):v(?P<version>[0-9]{1,6})")
_REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject")
_REQUIRED = frozenset(_REQUIRED_HEADERS)
_ATTRIBUTE_HEADERS = (*_REQUIRED_HEADERS, "ce_dataschema")
_NON_EMPTY = ("ce_id", "ce_source", "ce_type", "ce_subject")


class MalformedEvent(ValueError):
    """A record that is not a valid event of the catalogue; the reason says what is wrong."""


def dataschema(event_type: str, version: int) -> str:
    """The ``dataschema`` URI naming a payload schema and its version."""
    return f"{_SCHEMA_PREFIX}{event_type}:v{version}"


def encode(event: Event, topic: str) -> Message:
    """The Kafka binary-mode message of an event, keyed by its subject (the case id).

    Written directly, as ``decode`` reads: every event of every service passes here once, and the
    SDK's generic path (an intermediate event object, the payload dumped to a dict and then to
    JSON) was a sixth of a filing's CPU. The payload is written by pydantic-core in one step, in
    UTF-8. The CloudEvents SDK reads these messages back in the tests (tests/unit/test_envelope.py).
    """
    subject = event.subject.encode()
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", str(event.id).encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_subject", subject),
        ("ce_time", rfc3339(event.time).encode()),
        ("ce_dataschema", dataschema(event.type, event.version).encode()),
        ("content-type", _CONTENT_TYPE_HEADER),
    )
    return Message(topic=topic, key=subject, value=event.data.model_dump_json().encode(), headers=headers)


def decode(record: Record, catalogue: Catalogue = CATALOGUE) -> Event:
    """The event in a record; ``MalformedEvent`` or ``UnknownEventType`` when it cannot be read.

    The binary mode read directly (headers in, ``ce_`` attributes out), not through the SDK's
    ``from_binary``: every consumer decodes every record, and the SDK's generic path (a dateutil
    parse, an intermediate event object, JSON parsed before the payload's validation) was a third
    of the assessment stream's time. The payload is validated straight from the JSON bytes.
    """
    headers = {name.lower(): value for name, value in record.headers}
    if not headers.keys() >= _REQUIRED:
        # Inventing a fresh id or time for a missing one, as a lenient reader might, would
        # defeat the inbox.
        missing = [name for name in _REQUIRED_HEADERS if name not in headers]
        raise MalformedEvent(f"not a CloudEvent: missing header(s) {', '.join(missing)}")
    try:
        attributes = {name: headers[name].decode() for name in _ATTRIBUTE_HEADERS if name in headers}
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"not a CloudEvent: {exc}") from exc
    if attributes["ce_specversion"] != "1.0":
        raise MalformedEvent(f"not a CloudEvent: specversion {attributes['ce_specversion'][:20]!r} is not 1.0")
    for name in _NON_EMPTY:
        if not attributes[name]:
            raise MalformedEvent(f"not a CloudEvent: attribute '{name[3:]}' must not be empty")
    event_type = attributes["ce_type"]
    version = _schema_version(attributes.get("ce_dataschema"), event_type)
    model = catalogue.model_for(event_type, version)
    time = _time(attributes["ce_time"], event_type)
    try:
        event_id = UUID(attributes["ce_id"])
    except ValueError as exc:
        raise MalformedEvent(f"{event_type}: id is not a UUID") from exc
    if not record.value.lstrip()[:1] == b"{":
        raise MalformedEvent(f"{event_type}: the value is not a JSON object")
    try:
        payload = model.model_validate_json(record.value)
    except ValidationError as exc:
        raise MalformedEvent(f"{event_type} v{version}: {_summary(exc)}") from exc
    return Event(id=event_id, source=attributes["ce_source"], subject=attributes["ce_subject"], time=time, data=payload)


def _time(text: str, event_type: str) -> datetime:
    """An RFC 3339 ``time`` attribute, in UTC."""
    try:
        time = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedEvent(f"not a CloudEvent: time {text[:40]!r} is not an RFC 3339 timestamp") from exc
    if time.tzinfo is None:
        raise MalformedEvent(f"not a CloudEvent: time {text[:40]!r} must be timezone aware")
    try:
        return time.astimezone(UTC)
    except OverflowError as exc:
        raise MalformedEvent(f"{event_type}: time {text[:40]} is out of range") from exc


@lru_cache(maxsize=1024)
def _schema_version(schema: str | None, event_type: str) -> int:
    """The version a ``dataschema`` names (a few distinct values, read once each)."""
    if schema is None:
        raise MalformedEvent(f"{event_type}: no dataschema, so no schema version")
    match = _SCHEMA.fullmatch(schema)
    if match is None or match["type"] != event_type:
        raise MalformedEvent(f"{event_type}: dataschema {schema[:200]!r} does not name this type's version")
    return int(match["version"])


def _summary(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in error.errors()[:5])


__all__ = ["CONTENT_TYPE", "MalformedEvent", "UnknownEventType", "dataschema", "decode", "encode"]

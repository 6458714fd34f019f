"""The CloudEvents envelope and its Kafka binary-mode binding."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat

from shared.core.clock import SimulatedClock
from shared.events.catalogue import (
    CATALOGUE,
    CaseCancelled,
    Catalogue,
    EventPayload,
    GeoPoint,
    GridPlace,
    ReportReceived,
    ReportSource,
    UnknownEventType,
)
from shared.events.envelope import Event
from shared.messaging.binding import MalformedEvent, decode, encode
from shared.messaging.bus import Message, Record

CLOCK = SimulatedClock(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
CASE_ID = "0195f7a0-1111-7000-8000-000000000001"


def _event() -> Event:
    return Event.occurred(
        CaseCancelled(cancelled_by="lead-7", reason="duplicate report"),
        subject=CASE_ID,
        source="/citycase/closure",
        clock=CLOCK,
    )


def _record(message: Message, **header_overrides: bytes | None) -> Record:
    headers = dict(message.headers)
    for name, value in header_overrides.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return Record(message.topic, 0, 0, message.key, message.value, tuple(headers.items()))


def test_encoding_follows_the_kafka_binary_binding() -> None:
    event = _event()
    message = encode(event, "case-events")
    headers = dict(message.headers)
    assert message.topic == "case-events"
    assert message.key == CASE_ID.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == str(event.id).encode()
    assert headers["ce_type"] == b"case.cancelled"
    assert headers["ce_source"] == b"/citycase/closure"
    assert headers["ce_subject"] == CASE_ID.encode()
    assert headers["ce_time"] == b"2026-11-20T09:30:00Z"
    assert headers["ce_dataschema"] == b"urn:citycase:event:case.cancelled:v1"
    assert headers["content-type"] == b"application/json"
    assert message.value == b'{"cancelled_by":"lead-7","reason":"duplicate report"}'


def test_the_cloudevents_sdk_reads_what_is_encoded() -> None:
    """The binding is written by hand for speed; the reference SDK must read it as the same event."""
    event = Event.occurred(
        ReportReceived(
            source=ReportSource.HOTLINE,
            category_code="01-01-04",
            description="井盖缺失，行人易跌落",
            point=GeoPoint(lon=121.1, lat=30.0),
            place=GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1"),
            reporter_id="12345",
            photos=["sha256:" + "0" * 64],
        ),
        subject=CASE_ID,
        source="/citycase/intake",
        clock=CLOCK,
        at=datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=UTC),
    )
    message = encode(event, "case-events")
    read = kafka.from_binary(kafka.KafkaMessage(dict(message.headers), message.key, message.value), JSONFormat())
    assert read.get_id() == str(event.id)
    assert read.get_source() == event.source
    assert read.get_type() == "report.received"
    assert read.get_subject() == CASE_ID
    assert read.get_time() == event.time
    assert read.get_dataschema() == "urn:citycase:event:report.received:v1"
    assert read.get_datacontenttype() == "application/json"
    assert read.get_data() == event.data.model_dump(mode="json")
    # The payload in UTF-8, not escaped: a Chinese description takes a third of the bytes.
    assert "井盖缺失".encode() in message.value


def test_decoding_gives_back_the_same_event() -> None:
    event = _event()
    assert decode(_record(encode(event, "t"))) == event


@pytest.mark.parametrize(
    ("overrides", "value", "reason"),
    [
        ({"ce_id": None}, None, "missing header(s) ce_id"),
        ({"ce_time": None, "ce_source": None}, None, "missing header(s) ce_source, ce_time"),
        ({"ce_dataschema": None}, None, "no dataschema"),
        ({"ce_dataschema": b"urn:citycase:event:case.closed:v1"}, None, "does not name this type's version"),
        ({"ce_dataschema": b"urn:citycase:event:case.cancelled:vX"}, None, "does not name this type's version"),
        ({"ce_dataschema": "urn:citycase:event:case.cancelled:v²".encode()}, None, "does not name this type's"),
        ({"ce_dataschema": b"urn:citycase:event:case.cancelled:v" + b"9" * 5000}, None, "does not name this type's"),
        ({"ce_time": b"0001-01-01T00:30:00+01:00"}, None, "out of range"),
        ({"ce_subject": b""}, None, "subject' must not be empty"),
        ({"ce_time": b"2026-11-20T09:30:00"}, None, "must be timezone aware"),
        ({"ce_time": b"yesterday"}, None, "not a CloudEvent"),
        ({"ce_id": b"42"}, None, "id is not a UUID"),
        ({}, b"[1, 2]", "not a JSON object"),
        ({}, b'{"cancelled_by": "x"}', "reason: Field required"),
    ],
)
def test_malformed_records_are_refused_with_the_reason(
    overrides: dict[str, bytes | None], value: bytes | None, reason: str
) -> None:
    message = encode(_event(), "t")
    if value is not None:
        message = Message(message.topic, message.key, value, message.headers)
    with pytest.raises(MalformedEvent, match=re.escape(reason)):
        decode(_record(message, **overrides))


def test_unknown_types_and_versions_are_refused() -> None:
    message = encode(_event(), "t")
    with pytest.raises(UnknownEventType, match=r"case\.teleported"):
        decode(_record(message, ce_type=b"case.teleported", ce_dataschema=b"urn:citycase:event:case.teleported:v1"))
    with pytest.raises(UnknownEventType, match="version 2"):
        decode(_record(message, ce_dataschema=b"urn:citycase:event:case.cancelled:v2"))


def test_readers_tolerate_fields_they_do_not_know() -> None:
    message = encode(_event(), "t")
    extended = Message(
        message.topic, message.key, b'{"cancelled_by": "a", "reason": "b", "added_later": 1}', message.headers
    )
    assert decode(_record(extended)).data == CaseCancelled(cancelled_by="a", reason="b")


def test_a_new_schema_version_is_registered_beside_the_old_one() -> None:
    class CaseCancelledV2(EventPayload):
        TYPE: ClassVar[str] = "case.cancelled"
        VERSION: ClassVar[int] = 2
        cancelled_by: str
        reason_code: str

    catalogue = Catalogue(CaseCancelled, CaseCancelledV2)
    assert catalogue.model_for("case.cancelled", 2) is CaseCancelledV2
    assert catalogue.model_for("case.cancelled", 1) is CaseCancelled
    with pytest.raises(ValueError, match="registered twice"):
        Catalogue(CaseCancelled, CaseCancelled)


def test_the_catalogue_covers_the_whole_lifecycle_in_past_tense() -> None:
    lifecycle = {
        "report.received", "report.verification_requested", "report.verified", "report.rejected",
        "report.merged", "case.filed", "case.queued_for_coordination", "case.dispatched",
        "case.accepted", "case.returned", "case.extension_requested", "case.extension_approved",
        "case.extension_denied", "case.suspended", "case.resumed", "case.handled",
        "case.check_requested", "case.check_passed", "case.check_failed", "case.closed",
        "case.cancelled", "case.deadline_missed", "case.deadline_recomputed", "case.supervision_issued",
        "case.callback_recorded", "case.reopened",
    }  # fmt: skip
    assert CATALOGUE.types == lifecycle


def test_header_names_are_read_whatever_their_case() -> None:
    event = _event()
    message = encode(event, "t")
    shouting = replace(message, headers=tuple((name.upper(), value) for name, value in message.headers))
    assert decode(_record(shouting)) == event

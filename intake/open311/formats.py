"""Open311 GeoReport v2's two formats, written by one writer: JSON and XML.

The spec (https://wiki.open311.org/GeoReport_v2, "Format Support", "Internationalization and
Encoding") asks for UTF-8 everywhere, an XML declaration naming it, `text/xml` and
`application/json` content types, and dates in ISO 8601 with their offset. Every document is a
list of like elements under one root (`<services><service>`, `<service_requests><request>`,
`<errors><error>`) or, for the service definition and discovery, one record; JSON writes the same
as an array or an object. A record's keys are written in the order the caller gives them, which is
the spec's order for each document (the orders are written down in ``intake.open311.routes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import Response

_CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# Written by hand: ElementTree writes single quotes and no declaration at all for UTF-8; the spec
# shows `<?xml version="1.0" encoding="utf-8"?>`.
_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'

# Characters XML 1.0 cannot carry even escaped (most C0 controls): a citizen's description may hold
# them, and one would make the whole document unreadable to every parser.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Format(StrEnum):
    """The format a client names with the resource's suffix (`services.xml`, `services.json`)."""

    JSON = "json"
    XML = "xml"

    @property
    def content_type(self) -> str:
        """The Content-Type of a document in this format."""
        return _CONTENT_TYPES[self.value]


class Items(list[Any]):
    """A list inside a record, with the element name XML gives each member (`<attributes>` holds
    `<attribute>`s, an endpoint's `<formats>` holds `<format>`s); JSON writes it as an array."""

    def __init__(self, item: str, members: Iterable[Any] = ()) -> None:
        super().__init__(members)
        self.item = item


class Open311Error(Exception):
    """A refusal answered with Open311's own error body, in the format the client asked for
    (``intake.open311.routes`` installs the handler that writes it).

    ``code`` is the error's code in the body; the spec's examples use the HTTP status, the default.
    ``problems`` are the body's errors, (code, description) each: this one, unless a refusal with
    several sets them all.
    """

    def __init__(self, status_code: int, description: str, fmt: Format, code: str | int | None = None) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.description = description
        self.fmt = fmt
        self.code = status_code if code is None else code
        self.problems: list[tuple[str | int, str]] = [(self.code, description)]


def document(fmt: Format, root: str, item: str, items: list[dict[str, Any]], status_code: int = 200) -> Response:
    """A list of like records: a JSON array, or `<root><item>…</item>…</root>` in XML."""
    if fmt is Format.JSON:
        return _response(fmt, _json(items), status_code)
    element = ET.Element(root)
    for fields in items:
        _fill(ET.SubElement(element, item), fields)
    return _response(fmt, _xml(element), status_code)


def record(fmt: Format, root: str, fields: Mapping[str, Any], status_code: int = 200) -> Response:
    """One record: a JSON object, or `<root>` with the record's fields as its children in XML
    (the service definition, discovery)."""
    if fmt is Format.JSON:
        return _response(fmt, _json(fields), status_code)
    element = ET.Element(root)
    _fill(element, fields)
    return _response(fmt, _xml(element), status_code)


def errors(fmt: Format, status_code: int, problems: list[tuple[str | int, str]]) -> Response:
    """Open311's error body: `[{"code", "description"}]` or `<errors><error><code/><description/>`."""
    items = [{"code": code, "description": text} for code, text in problems]
    return document(fmt, "errors", "error", items, status_code)


def open311_error(status_code: int, code: str | int, description: str, fmt: Format) -> Response:
    """One error in Open311's error body."""
    return errors(fmt, status_code, [(code, description)])


def format_of_path(path: str) -> Format:
    """The format a path's suffix names; XML, the format the spec requires of every server, when it
    names none the server knows (a mistyped suffix still gets an error a client can read)."""
    return Format.JSON if path.endswith(".json") else Format.XML


def _response(fmt: Format, body: bytes, status_code: int) -> Response:
    return Response(content=body, status_code=status_code, media_type=fmt.content_type)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_value).encode("utf-8")


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return _datetime(value)
    raise TypeError(f"no Open311 JSON form for {type(value).__name__}")


def _xml(element: ET.Element) -> bytes:
    body: bytes = ET.tostring(element, encoding="utf-8", short_empty_elements=False)
    return _XML_DECLARATION + body


def _fill(element: ET.Element, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        _put(ET.SubElement(element, name), value)


def _put(element: ET.Element, value: object) -> None:
    """A value as an element's content; None leaves the element empty, as the spec's XML examples
    write a field with no value (`<description></description>`) where JSON writes null."""
    if isinstance(value, Items):
        for member in value:
            _put(ET.SubElement(element, value.item), member)
    elif isinstance(value, Mapping):
        _fill(element, value)
    elif value is not None:
        element.text = _NOT_XML.sub("", _text(value))


def _text(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"no Open311 XML form for {type(value).__name__}")


def _datetime(value: datetime) -> str:
    """ISO 8601 with the offset the spec requires (`2026-11-30T09:15:00+08:00`); a naive time
    would be read as the client's own local time, so it is a bug, not a format."""
    if value.tzinfo is None:
        raise ValueError("an Open311 date needs its offset")
    return value.isoformat(timespec="seconds")

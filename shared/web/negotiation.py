"""Content negotiation: what a request's ``Accept`` or ``Accept-Encoding`` header admits."""

from __future__ import annotations


def weights(header: str) -> dict[str, float]:
    """Each item a header lists (lower-cased, parameters other than ``q`` dropped) and its
    weight (RFC 9110 12.4.2): 1 when no ``q`` is given, 0 when the ``q`` cannot be read, so a
    malformed item admits nothing."""
    listed: dict[str, float] = {}
    for item in header.split(","):
        name, *parameters = item.split(";")
        if not name.strip():
            continue
        weight = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        listed[name.strip().lower()] = weight
    return listed

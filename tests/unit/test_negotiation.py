"""What an Accept or Accept-Encoding header admits, weights included."""

from __future__ import annotations

import pytest

from shared.web.negotiation import weights


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, br", {"gzip": 1.0, "br": 1.0}),
        ("gzip;q=0, *;q=0.5", {"gzip": 0.0, "*": 0.5}),
        ("Text/HTML; level=1; q=0.2", {"text/html": 0.2}),
        ("text/html;q=high", {"text/html": 0.0}),
        ("", {}),
        (" , gzip", {"gzip": 1.0}),
    ],
)
def test_each_item_has_its_weight(header: str, expected: dict[str, float]) -> None:
    assert weights(header) == expected

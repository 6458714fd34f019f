"""Every transition of handling's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handling import domain as handling
from shared.core.errors import IllegalTransition, InvalidInput

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


H = handling.TaskStatus


@pytest.mark.parametrize("status", list(H))
def test_department_actions(status: handling.TaskStatus) -> None:
    cases = (
        (handling.check_can_accept, {H.ASSIGNED}),
        (handling.check_can_return, {H.ASSIGNED, H.ACCEPTED}),
        (handling.check_can_report_handled, {H.ACCEPTED, H.REWORK}),
    )
    for check, allowed in cases:
        if status in allowed:
            check(status)
        else:
            with pytest.raises(IllegalTransition):
                check(status)


def test_one_extension_request_at_a_time_for_a_later_deadline() -> None:
    later = T0 + timedelta(days=2)
    handling.check_can_request_extension(H.ACCEPTED, None, later, T0)
    with pytest.raises(IllegalTransition, match="already pending"):
        handling.check_can_request_extension(H.ACCEPTED, later, later, T0)
    with pytest.raises(InvalidInput):
        handling.check_can_request_extension(H.ACCEPTED, None, T0, T0)
    with pytest.raises(IllegalTransition):
        handling.check_can_request_extension(H.HANDLED, None, later, T0)

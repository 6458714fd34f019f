"""The timer's backlog as the gauges show it: a check past its deadline and not reported yet is due,
for as long as it has been past; reported, it is due no more."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from closure.app import SPEC
from closure.timer import report_missed_checks
from shared.service.timer import refresh_timer_gauges
from tests.service.closure.helpers import checking_case
from tests.service.closure.test_timer import CHECK_DUE
from tests.service.conftest import ServiceFactory


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": "closure", "timer": "check"})


async def test_a_check_past_its_deadline_is_due_until_the_timer_reports_it(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    await checking_case(closure)
    await refresh_timer_gauges(closure.store, SPEC.timers)
    assert (gauge("citycase_timer_due"), gauge("citycase_timer_oldest_due_seconds")) == (0, 0)

    closure.clock.set(CHECK_DUE + timedelta(minutes=3))
    await refresh_timer_gauges(closure.store, SPEC.timers)
    assert (gauge("citycase_timer_due"), gauge("citycase_timer_oldest_due_seconds")) == (1, 180)

    assert await report_missed_checks(closure.ctx) == 1
    await refresh_timer_gauges(closure.store, SPEC.timers)
    assert (gauge("citycase_timer_due"), gauge("citycase_timer_oldest_due_seconds")) == (0, 0)

"""The names of the assessment indicators (综合评价指标), written once: the assessment stream, its
API and the batch recount (``python -m services reconcile``) all take them from here.

Names only. How a case adds to a counter is counted twice on purpose — by the stream in
``assessment`` and by the recount in ``services/tools`` — so a bug in either shows as a
difference; what the counters and scopes are called must not differ. ``assessment/INDICATORS.md``
is the contract these names come from.
"""

from __future__ import annotations

COUNTERS: tuple[str, ...] = (
    "reports",
    "filed",
    "filed_on_time",
    "cases_dispatched",
    "dispatched_on_time",
    "dispatches",
    "returns",
    "handled",
    "reworked",
    "checks_requested",
    "checks_due",
    "checks_on_time",
    "closed",
    "closed_on_time",
    "overdue_open",
    "cancelled",
    "callbacks",
    "satisfied",
)
"""The base counters, integers that add up across periods and scopes, in the order of the contract."""

DERIVED: tuple[str, ...] = (
    "due",
    "effective_filing_rate",
    "closure_rate",
    "on_time_closure_rate",
    "on_time_check_rate",
    "rework_rate",
    "return_rate",
    "accurate_dispatch_rate",
    "on_time_filing_rate",
    "on_time_dispatch_rate",
    "satisfaction_rate",
)
"""The indicators computed from base counters (``due`` and the rates), in the order they are answered."""

INDICATORS: tuple[str, ...] = (*COUNTERS, *DERIVED)
"""Every indicator a ranking may order by: the base counters, then the derived ones."""

CITY = "city"
"""The kind, and the one id, of the city-wide scope."""

SCOPE_KINDS: tuple[str, ...] = (
    CITY,
    "district",
    "street",
    "community",
    "cell",
    "category",
    "family",
    "source",
    "inspector",
    "department",
)
"""Every kind of scope counters are kept for."""

RANKED_KINDS: tuple[str, ...] = ("department", "district", "street", "community", "inspector", "category", "source")
"""The scope kinds a ranking compares."""

NOT_FOR_DEPARTMENTS: frozenset[str] = frozenset(
    {
        # A report and its filing happen before any department has the case.
        "reports",
        "filed",
        "filed_on_time",
        "effective_filing_rate",
        "on_time_filing_rate",
        # On-time dispatch measures the command center, not the department it dispatched to.
        "cases_dispatched",
        "dispatched_on_time",
        "on_time_dispatch_rate",
    }
)
"""The indicators a department does not have: no department counter holds them, no department
is answered or ranked by them."""


def indicators_of(scope_kind: str) -> tuple[str, ...]:
    """The indicators a scope of ``scope_kind`` has, in the order of ``INDICATORS``."""
    if scope_kind == "department":
        return tuple(name for name in INDICATORS if name not in NOT_FOR_DEPARTMENTS)
    return INDICATORS

"""The assessment service's use case: apply a batch of the case event log to the indicators —
load the cases' states, let the domain turn each case's events into counter changes, save the
counters and the states, in the batch's transaction (the tracked consumer's, with its positions).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from uuid import UUID

from assessment import domain, stream
from assessment.domain import Attribution, CaseState
from shared.city.model import City
from shared.events.envelope import Event
from shared.messaging.store import Transaction


def attribution(city: City) -> Attribution:
    """The city's answers to what events leave out: a category's family, a cell's inspector."""

    def inspector_of(cell_id: str) -> str | None:
        try:
            return city.inspector_for(cell_id).id
        except KeyError:
            return None

    def family_of(code: str) -> str:
        try:
            return city.category(code).family.value
        except KeyError:
            return "unknown"

    return Attribution(family_of=family_of, inspector_of=inspector_of)


class Stream:
    """Applies batches of case events to per-case states and counters (one transaction each)."""

    def __init__(self, city: City) -> None:
        self.zone = zoneinfo.ZoneInfo(city.timezone)
        self.attribution = attribution(city)

    async def apply(self, tx: Transaction, events: Sequence[Event]) -> None:
        """Turn ``events`` into counter deltas and new case states, written in ``tx``."""
        by_case: dict[UUID, list[Event]] = {}
        # A case id parsed once a case, not once an event: a replay's batch holds 20,000 events.
        parsed: dict[str, UUID] = {}
        for event in events:
            case_id = parsed.get(event.subject)
            if case_id is None:
                case_id = parsed[event.subject] = UUID(event.subject)
            by_case.setdefault(case_id, []).append(event)
        states = await stream.load_states(tx, by_case)
        changes: domain.Changes = []
        changed: dict[UUID, CaseState] = {}
        for case_id, case_events in by_case.items():
            state = states.get(case_id) or CaseState()
            change = domain.decide(state, case_events, self.attribution, self.zone)
            if change is not None:
                changes.extend(change)
                changed[case_id] = state
        await stream.add_to_counters(tx, domain.to_periods(changes))
        await stream.save_states(tx, changed)

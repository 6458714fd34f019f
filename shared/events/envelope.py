"""The envelope of every event: CloudEvents 1.0 attributes (id, source, subject = the case id,
time) around a versioned payload of the catalogue. How it travels over the bus (Kafka binary
mode) is ``shared.messaging.binding``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.core.clock import Clock
from shared.core.ids import new_id
from shared.events.catalogue import EventPayload


@dataclass(frozen=True, slots=True)
class Event:
    """A fact about a case, as it travels between services."""

    id: UUID
    source: str
    subject: str
    time: datetime
    data: EventPayload

    @property
    def type(self) -> str:
        """The CloudEvents type, e.g. ``case.filed``."""
        return self.data.TYPE

    @property
    def version(self) -> int:
        """The payload's schema version."""
        return self.data.VERSION

    @classmethod
    def occurred(
        cls, data: EventPayload, *, subject: str | UUID, source: str, clock: Clock, at: datetime | None = None
    ) -> Event:
        """A new event with a fresh id, stamped with ``at`` or else the clock's current time."""
        return cls(id=new_id(), source=source, subject=str(subject), time=at or clock.now(), data=data)

"""What a shift lead (值班长) does for the whole process rather than for one service: the dead
letters of the city, listed, inspected and sent again.

Every process serves these routes for the whole dead-letter topic, whichever services it runs: a
dead letter is the city's, and the process that answers may not be the one whose consumer failed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from shared.core.auth import Role
from shared.messaging.dead_letters import DeadLetter, DeadLetters, DeadLettersUnavailable, readable
from shared.web.auth import require

log = logging.getLogger(__name__)

WATCH_EVERY_S = 30.0
"""How often a process reads the dead-letter topic's end offsets to keep its counts fresh."""

Consumer = Annotated[str | None, Query(max_length=255, description="only the dead letters of this consumer")]


class OriginOut(BaseModel):
    """Where a dead letter's record was read."""

    model_config = ConfigDict(from_attributes=True)

    topic: str
    partition: int
    offset: int


class DeadLetterOut(BaseModel):
    """A dead letter: where it lies on the dead-letter topic, which consumer gave up on which
    record, why and when; the event's type, id and subject when the record has them."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    partition: int
    offset: int
    consumer: str | None
    reason: str
    origin: OriginOut | None
    event_type: str | None
    event_id: str | None
    subject: str | None
    dead_lettered_at: datetime
    redrive_of: UUID | None
    redrivable: bool


class DeadLetterList(BaseModel):
    """The dead letters not redriven yet, oldest first."""

    count: int
    dead_letters: list[DeadLetterOut]


class Readable(BaseModel):
    """Bytes as text when they are UTF-8, else base64."""

    text: str
    encoding: Literal["utf-8", "base64"]

    @classmethod
    def of(cls, data: bytes) -> Readable:
        """``data`` for a person to read."""
        text, encoding = readable(data)
        return cls(text=text, encoding=encoding)


class Header(BaseModel):
    """One header of a record."""

    name: str
    value: Readable


class DeadLetterDetail(DeadLetterOut):
    """A dead letter with its record as it lies on the dead-letter topic."""

    redriven_at: datetime | None
    key: Readable | None
    value: Readable
    headers: list[Header]


class Redriven(BaseModel):
    """The dead letters whose records were sent again."""

    count: int
    redriven: list[DeadLetterOut]


def operations_router(dead_letters: DeadLetters, bus_connected: asyncio.Event) -> APIRouter:
    """The ``/ops`` routes, for shift leads only, on ``dead_letters`` once the bus is connected."""

    async def connected() -> None:
        if not bus_connected.is_set():
            raise DeadLettersUnavailable("not connected to the event bus yet; retry")

    router = APIRouter(
        prefix="/ops",
        tags=["operations"],
        dependencies=[Depends(require(Role.SHIFT_LEAD)), Depends(connected)],
    )

    @router.get("/dead-letters", summary="The dead letters not redriven yet, oldest first")
    async def list_dead_letters(consumer: Consumer = None) -> DeadLetterList:
        letters = await dead_letters.pending(consumer)
        return DeadLetterList(count=len(letters), dead_letters=[_out(letter) for letter in letters])

    @router.post("/dead-letters/redrive", summary="Send every pending dead letter (of a consumer) again")
    async def redrive_all(consumer: Consumer = None) -> Redriven:
        return _redriven(await dead_letters.redrive_all(consumer))

    @router.get("/dead-letters/{letter_id}", summary="One dead letter, with the reason and its record")
    async def show_dead_letter(letter_id: UUID) -> DeadLetterDetail:
        seen = await dead_letters.inspect(letter_id)
        return DeadLetterDetail(
            **_out(seen.letter).model_dump(),
            redriven_at=seen.redriven_at,
            key=None if seen.key is None else Readable.of(seen.key),
            value=Readable.of(seen.value),
            headers=[Header(name=name, value=Readable.of(value)) for name, value in seen.headers],
        )

    @router.post("/dead-letters/{letter_id}/redrive", summary="Send a dead letter again to the consumer that failed")
    async def redrive(letter_id: UUID) -> Redriven:
        return _redriven([await dead_letters.redrive(letter_id)])

    return router


def readiness_warnings(dead_letters: DeadLetters) -> dict[str, str]:
    """What ``/readyz`` warns of: dead letters pending, as last read.

    A warning, never a failed check: a dead letter waits for an operator, and taking the process
    out of the load balancer would stop everything else it serves without bringing that closer.
    """
    counts = dead_letters.pending_counts()
    if not counts:
        return {}
    by_consumer = ", ".join(f"{consumer}: {count}" for consumer, count in sorted(counts.items()))
    return {"dead_letters": f"{sum(counts.values())} pending ({by_consumer}); see GET /ops/dead-letters"}


async def watch_dead_letters(
    dead_letters: DeadLetters, bus_connected: asyncio.Event, every_s: float = WATCH_EVERY_S
) -> None:
    """Keep the counts behind the gauge and the readiness warning fresh, until cancelled."""
    await bus_connected.wait()
    failing = False
    while True:
        try:
            await dead_letters.refresh()
            if failing:
                log.info("the dead-letter topic can be read again")
            failing = False
        except DeadLettersUnavailable as exc:
            # Once per outage, not once per attempt.
            if not failing:
                log.warning("%s; the dead-letter counts are not fresh", exc.message)
            failing = True
        await asyncio.sleep(every_s)


def _out(letter: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut.model_validate(letter)


def _redriven(letters: list[DeadLetter]) -> Redriven:
    return Redriven(count=len(letters), redriven=[_out(letter) for letter in letters])

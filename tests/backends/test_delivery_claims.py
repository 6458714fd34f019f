"""Several intake processes send deliveries from one table at once (``intake.delivery``), on both
backends: each message goes out once, and each case's messages in order, however the senders'
claims interleave."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import httpx
from sqlalchemy import func, select

from intake.delivery import DeliveryState, Sender, schedule
from intake.models import deliveries, metadata
from intake.outbound import Kind, StatusMessage, message_id
from shared.core.clock import SystemClock
from shared.core.ids import new_id
from shared.events.envelope import Event
from shared.messaging.store import ServiceStore
from tests.conftest import Backend
from tests.support.integrations import HOTLINE_ENDPOINT, integrations

CASES, PER_CASE, SENDERS = 12, 4, 3


async def test_senders_sharing_the_table_send_each_message_once_and_each_case_in_order(backend: Backend) -> None:
    store = await backend.store("intake", metadata)
    clock = SystemClock()
    messages = []
    for case in range(CASES):
        case_id = new_id()
        for n in range(PER_CASE):
            identifier = message_id(new_id(), HOTLINE_ENDPOINT)
            body = {"id": str(identifier), "type": "status", "data": {"case": case, "n": n}}
            messages.append(
                StatusMessage(
                    message_id=identifier, endpoint=HOTLINE_ENDPOINT, case_id=case_id, kind=Kind.STATUS, body=body
                )
            )
    async with store.transaction() as tx:
        events = [
            Event(id=m.message_id, source="/citycase/intake", subject=str(m.case_id), time=clock.now(), data=m)
            for m in messages
        ]
        await schedule(tx, events)

    received: list[dict[str, int]] = []

    async def endpoint(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # an answer takes a moment: the senders' rounds overlap
        received.append(json.loads(request.content)["data"])
        return httpx.Response(204)

    city = integrations("http://hotline.test/in")
    senders = [
        Sender(store, city, clock, concurrency=5, transport=httpx.MockTransport(endpoint)) for _ in range(SENDERS)
    ]

    async def drain(sender: Sender) -> None:
        while await pending(store) > 0:
            await sender.send_due()
            await asyncio.sleep(0.01)

    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(drain(sender) for sender in senders))
    finally:
        for sender in senders:
            await sender.close()

    assert len(received) == CASES * PER_CASE  # none twice
    by_case: defaultdict[int, list[int]] = defaultdict(list)
    for data in received:
        by_case[data["case"]].append(data["n"])
    assert all(numbers == list(range(PER_CASE)) for numbers in by_case.values())


async def pending(store: ServiceStore) -> int:
    """The messages not delivered yet."""
    query = select(func.count()).select_from(deliveries).where(deliveries.c.state != DeliveryState.DELIVERED)
    async with store.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())

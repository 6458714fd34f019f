"""What intake reacts to: every event of every service, into the case file (``intake.case_file``)."""

from __future__ import annotations

from intake import case_file
from shared.events.catalogue import CATALOGUE
from shared.messaging.consumer import ConsumerSpec
from shared.service.context import ServiceContext


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One consumer group reading the whole case event log: a batch at once while no event fails,
    event by event otherwise."""
    return [
        ConsumerSpec(
            "intake.case-file",
            [ctx.settings.topic_case_events],
            dict.fromkeys(CATALOGUE.types, case_file.apply_one),
            apply_batch=case_file.apply_batch,
        )
    ]

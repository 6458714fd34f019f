"""What intake reacts to: every event of every service, into the case file (``intake.case_file``);
and the messages the case file sends other systems, into the deliveries (``intake.delivery``)."""

from __future__ import annotations

from intake import delivery
from intake.case_file import CaseFile
from intake.outbound import INTEGRATION_CATALOGUE
from shared.events.catalogue import CATALOGUE
from shared.messaging.consumer import ConsumerSpec
from shared.service.context import ServiceContext


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """The case file reads the whole case event log, a batch at once while no event fails, event
    by event otherwise; the deliveries read the integration topic the same way."""
    case_file = CaseFile(ctx)
    return [
        ConsumerSpec(
            "intake.case-file",
            [ctx.settings.topic_case_events],
            dict.fromkeys(CATALOGUE.types, case_file.apply_one),
            apply_batch=case_file.apply_batch,
        ),
        ConsumerSpec(
            "intake.delivery",
            [ctx.settings.topic_integration],
            dict.fromkeys(INTEGRATION_CATALOGUE.types, delivery.schedule_one),
            apply_batch=delivery.schedule,
            catalogue=INTEGRATION_CATALOGUE,
        ),
    ]

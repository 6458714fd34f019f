"""The events the dispatch service reacts to."""

from __future__ import annotations

from dispatch import handlers
from shared.context import Reaction, ServiceContext, bind_reactions
from shared.messaging.consumer import ConsumerSpec

REACTIONS: dict[str, Reaction] = {
    "case.filed": handlers.on_filed,
    "case.returned": handlers.on_returned,
    "case.accepted": handlers.on_accepted,
    "case.extension_requested": handlers.on_extension_requested,
    "case.handled": handlers.on_handled,
    "case.check_failed": handlers.on_check_failed,
    "case.closed": handlers.on_ended,
    "case.cancelled": handlers.on_ended,
}


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("dispatch.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

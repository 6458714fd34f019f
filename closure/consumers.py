"""The events the closure service reacts to."""

from __future__ import annotations

from closure import handlers
from shared.context import Reaction, ServiceContext, bind_reactions
from shared.messaging.consumer import ConsumerSpec

REACTIONS: dict[str, Reaction] = {
    "case.filed": handlers.on_filed,
    "case.dispatched": handlers.on_deadline,
    "case.extension_approved": handlers.on_deadline,
    "case.resumed": handlers.on_deadline,
    "case.handled": handlers.on_handled,
}


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("closure.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

"""The events the handling service reacts to."""

from __future__ import annotations

from handling import handlers
from shared.context import Reaction, ServiceContext, bind_reactions
from shared.messaging.consumer import ConsumerSpec

REACTIONS: dict[str, Reaction] = {
    "report.received": handlers.on_report_received,
    "case.filed": handlers.on_filed,
    "case.dispatched": handlers.on_dispatched,
    "case.extension_approved": handlers.on_deadline_moved,
    "case.resumed": handlers.on_deadline_moved,
    "case.extension_denied": handlers.on_extension_denied,
    "case.suspended": handlers.on_suspended,
    "case.check_failed": handlers.on_check_failed,
    "case.closed": handlers.on_ended,
    "case.cancelled": handlers.on_ended,
}


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("handling.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

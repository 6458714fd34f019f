"""The events the closure service reacts to, keyed by payload class."""

from __future__ import annotations

from typing import Any

from closure import handlers
from shared.events.catalogue import (
    CallbackRecorded,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseResumed,
    DeadlineRecomputed,
    ExtensionApproved,
)
from shared.messaging.consumer import ConsumerSpec
from shared.service.context import On, ServiceContext, bind_reactions

REACTIONS: tuple[On[Any], ...] = (
    On(CaseFiled, handlers.on_filed),
    On(CaseDispatched, handlers.on_deadline),
    On(ExtensionApproved, handlers.on_deadline),
    On(CaseResumed, handlers.on_deadline),
    On(DeadlineRecomputed, handlers.on_deadline_recomputed),
    On(CaseHandled, handlers.on_handled),
    On(CallbackRecorded, handlers.on_callback_recorded),
)


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("closure.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

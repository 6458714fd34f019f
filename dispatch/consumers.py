"""The events the dispatch service reacts to, keyed by payload class."""

from __future__ import annotations

from typing import Any

from dispatch import handlers
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseFiled,
    CaseHandled,
    CaseReopened,
    CaseReturned,
    CheckFailed,
    ExtensionRequested,
)
from shared.messaging.consumer import ConsumerSpec
from shared.service.context import On, ServiceContext, bind_reactions

REACTIONS: tuple[On[Any], ...] = (
    On(CaseFiled, handlers.on_filed),
    On(CaseReturned, handlers.on_returned),
    On(CaseAccepted, handlers.on_accepted),
    On(ExtensionRequested, handlers.on_extension_requested),
    On(CaseHandled, handlers.on_handled),
    On(CheckFailed, handlers.on_check_failed),
    On(CaseReopened, handlers.on_reopened),
    On(CaseClosed, handlers.on_ended),
    On(CaseCancelled, handlers.on_ended),
)


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("dispatch.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

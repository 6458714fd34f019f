"""The events the handling service reacts to, keyed by payload class."""

from __future__ import annotations

from typing import Any

from handling import handlers
from shared.events.catalogue import (
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseReopened,
    CaseResumed,
    CaseSuspended,
    CheckFailed,
    DeadlineRecomputed,
    ExtensionApproved,
    ExtensionDenied,
    ReportReceived,
)
from shared.messaging.consumer import ConsumerSpec
from shared.service.context import On, ServiceContext, bind_reactions

REACTIONS: tuple[On[Any], ...] = (
    On(ReportReceived, handlers.on_report_received),
    On(CaseFiled, handlers.on_filed),
    On(CaseDispatched, handlers.on_dispatched),
    On(ExtensionApproved, handlers.on_extension_approved),
    On(CaseResumed, handlers.on_resumed),
    On(DeadlineRecomputed, handlers.on_deadline_recomputed),
    On(ExtensionDenied, handlers.on_extension_denied),
    On(CaseSuspended, handlers.on_suspended),
    On(CheckFailed, handlers.on_check_failed),
    On(CaseReopened, handlers.on_reopened),
    On(CaseClosed, handlers.on_ended),
    On(CaseCancelled, handlers.on_ended),
)


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One group following the lifecycle on the case event log."""
    return [ConsumerSpec("handling.lifecycle", [ctx.settings.topic_case_events], bind_reactions(ctx, REACTIONS))]

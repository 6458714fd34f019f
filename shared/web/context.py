"""The service context as a route dependency: ``ctx: Context`` in a route's signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.service.context import ServiceContext


async def service_context(request: Request) -> ServiceContext:
    """The context of the service a request reached (a coroutine so that FastAPI does not hand
    it to a thread pool)."""
    context: ServiceContext = request.app.state.context
    return context


Context = Annotated[ServiceContext, Depends(service_context)]

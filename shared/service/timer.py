"""A persisted timer as a service worker: the deadlines live in the service's tables, and a loop
looks at them now and then, so a restart loses none (dispatch's handling deadlines, closure's
check deadlines).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_timer(name: str, tick: Callable[[], Awaitable[int]], interval_seconds: float) -> None:
    """Call ``tick`` (which reports what has come due and answers how many) until it finds
    nothing, then wait ``interval_seconds``, forever; a failed tick is logged and tried again at
    the next one."""
    while True:
        try:
            while await tick() > 0:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s failed; retrying", name, exc_info=True)
        await asyncio.sleep(interval_seconds)

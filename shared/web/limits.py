"""Rate limits (429 with ``Retry-After``): on log-in, per account and per address, tightening
after failed passwords; on anonymous public reports, per address.

Counted per process, in memory (``limits``' moving windows): several replicas each allow the
rate, which still bounds a guesser or a flood to the rate times the replicas, without a shared
store on the request path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from shared.core.errors import DomainError
from shared.core.settings import Settings


class TooManyRequests(DomainError):
    """The caller went over a rate limit; ``retry_after`` seconds until it may try again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after_seconds": retry_after})
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rules:
    """The limits a process keeps, from the settings (``limits``' notation: ``5/15 minutes``)."""

    login_attempts_per_address: RateLimitItem
    login_failures_per_account: RateLimitItem
    login_failures_per_address: RateLimitItem
    public_reports_per_address: RateLimitItem

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        """The rules the settings name."""
        return cls(
            parse(settings.rate_login_attempts_per_address),
            parse(settings.rate_login_failures_per_account),
            parse(settings.rate_login_failures_per_address),
            parse(settings.rate_public_reports_per_address),
        )


class RateLimits:
    """The process's counters of every rule."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, rule: RateLimitItem, key: str, what: str) -> None:
        """Count one more for ``key``; ``TooManyRequests`` when that goes over ``rule``."""
        if not self._limiter.hit(rule, key):
            raise TooManyRequests(f"too many {what}; try again later", self._retry_after(rule, key))

    def ensure_below(self, rule: RateLimitItem, key: str, what: str) -> None:
        """``TooManyRequests`` while ``key`` has used up ``rule``, without counting."""
        if not self._limiter.test(rule, key):
            raise TooManyRequests(f"too many {what}; try again later", self._retry_after(rule, key))

    def _retry_after(self, rule: RateLimitItem, key: str) -> int:
        reset = self._limiter.get_window_stats(rule, key).reset_time
        return max(1, math.ceil(reset - time.time()))


def address_of(request: Request) -> str:
    """The caller's network address (behind a proxy, what the server was told to trust)."""
    return request.client.host if request.client else "unknown"


def limits_of(request: Request) -> RateLimits:
    """The process's rate limits."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


def per_address(rule: Callable[[Rules], RateLimitItem], what: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency counting each call against ``rule`` per caller address."""

    async def dependency(request: Request) -> None:
        limits = limits_of(request)
        limits.hit(rule(limits.rules), f"{what}:{address_of(request)}", what)

    return dependency

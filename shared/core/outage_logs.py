"""How an outage is logged: a line when a connection goes down and one when it is back, not a line
per retry.

Left alone, a broker outage writes megabytes a minute: the Kafka client logs every reconnect
attempt of every connection, ten a second each (24,000 lines a minute from one process in a
trial), and each of our retry loops a warning with its traceback per try. The lines that say what
happened are lost among them. :class:`StateLog` logs a retry loop's state changes with the count of
failures in between; :class:`RepeatFilter` keeps the first of each kind of a client library's
warnings and drops its repeats while they keep coming.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_QUIET_S = 60.0
# Kinds of records remembered at most; older ones are forgotten first (a library may format its
# messages before logging them, so kinds are not bounded by its code).
_KINDS = 1024


class RepeatFilter(logging.Filter):
    """Passes the first warning (or error) of each kind — logger, level, message template — and
    drops its repeats for as long as they come less than ``quiet_s`` apart; counts the drops.
    Records below WARNING pass: a library's info lines are its state changes (a group joined).
    """

    def __init__(self, quiet_s: float = _QUIET_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` is in seconds (monotonic)."""
        super().__init__()
        self.quiet_s = quiet_s
        self.dropped = 0
        self._clock = clock
        self._last_seen: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged."""
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        last = self._last_seen.pop(kind, None)
        self._last_seen[kind] = now  # re-inserted: the dict stays in order of last sight
        if len(self._last_seen) > _KINDS:
            del self._last_seen[next(iter(self._last_seen))]
        if last is not None and now - last < self.quiet_s:
            self.dropped += 1
            return False
        return True


_QUIETED: dict[str, RepeatFilter] = {}


def quiet_library_logs(library: str) -> RepeatFilter:
    """The process's :class:`RepeatFilter` for ``library``'s loggers (``aiokafka``), attached to
    every one of them that exists: a filter on a logger sees only the records logged there, not
    those of its children. Call it once the library is imported; calling it again attaches the
    same filter to loggers made since.
    """
    quiet = _QUIETED.setdefault(library, RepeatFilter())
    names = [library, *(name for name in logging.Logger.manager.loggerDict if name.startswith(library + "."))]
    for name in names:
        logger = logging.getLogger(name)
        if quiet not in logger.filters:
            logger.addFilter(quiet)
    return quiet


class StateLog:
    """The state of something a loop keeps trying (the event bus, a consumer's group): a warning
    when it fails after working (or at its first try), nothing for the failures that follow, and
    one line when it works again, with how long it was down and what was not logged meanwhile.
    """

    def __init__(
        self,
        logger: logging.Logger,
        subject: str,
        *,
        quieted: RepeatFilter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``quieted``: a library's filter whose drops while down are counted in the recovery line."""
        self.logger = logger
        self.subject = subject
        self.quieted = quieted
        self._clock = clock
        self._down_since: float | None = None
        self._failures = 0
        self._dropped_before = 0

    @property
    def down(self) -> bool:
        """Whether the last try failed."""
        return self._down_since is not None

    def failed(self, error: BaseException, *, traceback: bool = False) -> None:
        """A try failed; logged when it is the first failure since working (with the traceback
        when asked), counted otherwise."""
        if self._down_since is not None:
            self._failures += 1
            return
        self._down_since = self._clock()
        self._failures = 0
        self._dropped_before = self.quieted.dropped if self.quieted else 0
        self.logger.warning(
            "%s is down: %s; retrying, with no more lines until it is back",
            self.subject,
            _described(error),
            exc_info=error if traceback else None,
            stacklevel=2,
        )

    def succeeded(self) -> None:
        """A try worked; logged when the one before failed."""
        if self._down_since is None:
            return
        quieted = f", {self.quieted.dropped - self._dropped_before} client log lines" if self.quieted else ""
        self.logger.warning(
            "%s is back after %.0f s (not logged meanwhile: %d more failures%s)",
            self.subject,
            self._clock() - self._down_since,
            self._failures,
            quieted,
            stacklevel=2,
        )
        self._down_since = None


def _described(error: BaseException) -> str:
    """The error's type and text, the type once (some libraries' texts start with it)."""
    kind, text = type(error).__name__, str(error)
    return text if text.startswith(kind) else f"{kind}: {text}"

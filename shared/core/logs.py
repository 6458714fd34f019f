"""The process's log lines: JSON, one object a line, for a log collector, or text for a person at
a terminal; each carries what the process was working on when it was written — the request (its
``X-Request-ID``), the case and the event being handled, the trace.

That context lives in context variables: an HTTP middleware sets the request id for the request's
task, a consumer the case and event ids while it handles an event (``working_on``), and asyncio
copies them into the tasks started meanwhile. A filter on the handler stamps them on each record
as it is written, so a record shows the context of the code that logged it.

The JSON is made by the standard library's ``json`` in a ``logging.Formatter`` of a few lines: the
fields are fixed, and a library (python-json-logger) would add a dependency to spare none of them.
Chinese text stays readable (``ensure_ascii=False``): a case's description is not a row of escapes.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.core import tracing
from shared.core.settings import LogFormat

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
CASE_ID: ContextVar[str | None] = ContextVar("case_id", default=None)
EVENT_ID: ContextVar[str | None] = ContextVar("event_id", default=None)
# The service at work, where one process runs several (a consumer's, a relay's); else the process's.
SERVICE: ContextVar[str | None] = ContextVar("service", default=None)

# The record attributes the context adds, in the order a line shows them.
_CONTEXT_FIELDS = ("case_id", "event_id", "request_id", "trace_id", "span_id")


@contextmanager
def working_on(*, service: str | None = None, case_id: object = None, event_id: object = None) -> Iterator[None]:
    """The case and event (and service) of the log lines written in the block; those not given
    stay as they were."""
    tokens = [
        (variable, variable.set(str(value)))
        for variable, value in ((SERVICE, service), (CASE_ID, case_id), (EVENT_ID, event_id))
        if value is not None
    ]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


class ContextStamp(logging.Filter):
    """Stamps each record with the service and the ids of the work at hand (None where unknown)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Always passes the record, stamped."""
        record.service = SERVICE.get() or self.service
        record.case_id = CASE_ID.get()
        record.event_id = EVENT_ID.get()
        record.request_id = REQUEST_ID.get()
        ids = tracing.current_ids()
        record.trace_id, record.span_id = ids if ids else (None, None)
        return True


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, RFC 3339 with milliseconds), level, service,
    logger, message, the context ids that are known, and the exception's traceback when there is one.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The line, without its newline."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A record as text for a terminal: time, level, logger, message, then the known context ids
    in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The message line, with the context after it."""
        text = super().formatMessage(record)
        known = [f"{field[:-3]}={value}" for field in _CONTEXT_FIELDS if (value := getattr(record, field, None))]
        return f"{text} [{' '.join(known)}]" if known else text


def configure_logging(
    log_format: LogFormat, level: str, service: str, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log line of the process (uvicorn's too, left unconfigured) to standard error
    (or ``stream``), as ``log_format`` says, from ``level`` up; the handler."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"log level {level!r} is none of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextStamp(service))
    as_text = log_format is LogFormat.TEXT or (log_format is LogFormat.AUTO and stream.isatty())
    handler.setFormatter(TextFormatter() if as_text else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn's loggers write through the root's handler: its access and error lines in the same form
    # (and on again if an earlier logging configuration in the process, uvicorn's own, disabled them).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False
        logger.setLevel(logging.NOTSET)  # the root's level, whatever an earlier uvicorn.Config set
    # Alembic logs a line per revision applied, thirty on a new city's first start: nothing an
    # operator acts on, and it buries where the city is served. `migrate` prints what changed instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler

"""Log lines: JSON with the context of the work at hand (or text on a terminal), Chinese kept
readable, an exception's traceback inside its line; and the request ids a caller may give."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.core import tracing
from shared.core.logs import REQUEST_ID, ContextStamp, JsonFormatter, TextFormatter, configure_logging, working_on
from shared.core.settings import LogFormat
from shared.web.request_ids import request_id_of


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines, stamped as a process called ``intake`` stamps them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextStamp("intake"))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def written(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_has_the_fields_and_the_ids_of_the_work_at_hand(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    logger.info("before")
    token = REQUEST_ID.set("req-7")
    try:
        with working_on(service="dispatch", case_id="case-1", event_id="event-2"):
            logger.warning("routed to %s", "the street office")
    finally:
        REQUEST_ID.reset(token)
    logger.info("after")
    before, during, after = written(out)
    assert set(before) == {"time", "level", "service", "logger", "message"}
    assert before["service"] == "intake"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", before["time"])
    assert during == {
        "time": during["time"],
        "level": "WARNING",
        "service": "dispatch",
        "logger": "test.logs",
        "message": "routed to the street office",
        "case_id": "case-1",
        "event_id": "event-2",
        "request_id": "req-7",
    }
    assert set(after) == set(before)


def test_chinese_stays_readable_and_an_exception_stays_in_its_line(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    try:
        raise ValueError("井盖缺失")
    except ValueError:
        logger.exception("案件 %s 处理失败", "2026-11-000123")
    raw = out.getvalue()
    assert raw.count("\n") == 1  # one line, the traceback's newlines escaped in it
    assert "案件 2026-11-000123 处理失败" in raw  # not \\u escapes
    (line,) = written(out)
    assert line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: 井盖缺失")


def test_a_line_carries_the_current_trace_while_tracing() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextStamp("all"))
    handler.setFormatter(JsonFormatter())
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "traced", None, None)
    handler.handle(record)
    tracing.start_tracing("test", exporter=InMemorySpanExporter())
    try:
        with tracing.provider().get_tracer("test").start_as_current_span("work") as span:
            handler.handle(record)
        ids = span.get_span_context()
    finally:
        tracing.stop_tracing()
    untraced, traced = written(out)
    assert "trace_id" not in untraced
    assert (traced["trace_id"], traced["span_id"]) == (f"{ids.trace_id:032x}", f"{ids.span_id:016x}")


def test_text_for_a_person_with_the_ids_in_brackets() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(ContextStamp("all"))
    handler.setFormatter(TextFormatter())
    record = logging.LogRecord(
        "shared.messaging.consumer", logging.WARNING, __file__, 1, "refused: %s", ("关闭",), None
    )
    with working_on(case_id="c-1", event_id="e-2"):
        handler.filter(record)
    text = handler.format(record)
    assert re.fullmatch(r"\S+ \S+ WARNING shared\.messaging\.consumer: refused: 关闭 \[case=c-1 event=e-2\]", text)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger and uvicorn's as they were, after the test configures them."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    uvicorn = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in names}
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, (handlers, propagate) in uvicorn.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(
    ("log_format", "stream", "json_lines"),
    [
        (LogFormat.AUTO, io.StringIO(), True),  # a file, a pipe, a collector
        (LogFormat.AUTO, Terminal(), False),
        (LogFormat.TEXT, io.StringIO(), False),
        (LogFormat.JSON, Terminal(), True),
    ],
)
def test_the_format_follows_the_setting_and_auto_looks_at_the_stream(
    log_format: LogFormat, stream: io.StringIO, json_lines: bool
) -> None:
    handler = configure_logging(log_format, "info", "intake", stream=stream)
    assert isinstance(handler.formatter, JsonFormatter) is json_lines
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    logging.getLogger("test").debug("below the level")
    (line,) = stream.getvalue().splitlines()
    message = json.loads(line)["message"] if json_lines else line
    assert '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200' in message


@pytest.mark.usefixtures("root_logging")
def test_an_unknown_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="log level 'LOUD' is none of"):
        configure_logging(LogFormat.JSON, "LOUD", "intake", stream=io.StringIO())


@pytest.mark.parametrize("given", ["abc-123", "01a22dd2e1a7789ba2d3ffb431062dae", "gw.7f3a_2~x"])
def test_a_callers_request_id_is_kept_when_it_is_a_short_token(given: str) -> None:
    assert request_id_of([(b"x-request-id", given.encode())]) == given
    assert request_id_of([(b"X-Request-ID", given.encode())]) == given


@pytest.mark.parametrize(
    "given",
    [b"", b"a b", b"a\nlevel=ERROR", b'a"b', b"x" * 129, "案件".encode(), b"a\x00"],
)
def test_a_callers_request_id_that_is_not_a_short_token_is_replaced(given: bytes) -> None:
    made = request_id_of([(b"x-request-id", given)])
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id_of([]) != made

"""Logs: the JSON formatter, one record per line (control characters escaped), and the
throttle (a real server's logs: tests/integration/test_logs_server.py)."""

from __future__ import annotations

import json
import logging
import sys

from gateway import logs
from gateway.logs import JsonFormatter


def test_json_formatter_makes_one_object_per_line():
    record = logging.LogRecord("gateway", logging.WARNING, __file__, 1, "session %s closed: %s",
                               ("abc", "expired"), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "session abc closed: expired"
    assert entry["level"] == "warning" and entry["logger"] == "gateway"
    assert entry["time"].endswith("Z")


# -- one record, one line: control characters escaped ------------------------------------

FORGED = "https://a.test\r\n2026-01-01 00:00:00,000 INFO gateway: forged"


def gateway_handler() -> logging.Handler:
    return next(h for h in logging.getLogger("gateway").handlers if getattr(h, "_gateway", False))


def test_text_format_escapes_every_control_character():
    logs.configure("INFO", "text")
    record = logging.LogRecord("gateway", logging.WARNING, __file__, 1,
                               "connection refused: origin %s is not allowed",
                               (FORGED + "\x00\x1b[31m\x7f\x85\u2028\t",), None)
    line = gateway_handler().format(record)
    assert line.splitlines() == [line] and "\r" not in line and "\n" not in line
    assert "origin https://a.test\\r\\n2026-01-01 00:00:00,000 INFO gateway: forged" in line
    assert line.endswith("forged\\x00\\x1b[31m\\x7f\\x85\\u2028\\t is not allowed")


def test_text_format_keeps_a_traceback_on_the_record_s_line():
    logs.configure("INFO", "text")
    try:
        raise ValueError(FORGED)
    except ValueError:
        record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "login by %s failed",
                                   ("ev\x1bil",), sys.exc_info())
    line = gateway_handler().format(record)
    assert line.splitlines() == [line]
    assert "login by ev\\x1bil failed\\nTraceback (most recent call last):\\n" in line
    assert "ValueError: https://a.test\\r\\n2026-01-01" in line


def test_json_format_keeps_a_record_on_one_line():
    message = FORGED + "\x00\x7f\x85\u2028\u2029"
    record = logging.LogRecord("auth", logging.INFO, __file__, 1, "%s", (message,), None)
    line = JsonFormatter().format(record)
    assert line.splitlines() == [line]  # NEL and U+2028/9 are line breaks to many readers
    assert "\x85" not in line and "\u2028" not in line and "\x7f" not in line
    assert json.loads(line)["message"] == message


# -- the throttle ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


def throttled(name: str, clock: Clock, limit: int = 20) -> tuple[logging.Logger, Lines]:
    logger = logging.getLogger(f"throttle-test.{name}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines = Lines()
    lines.addFilter(logs.Throttle(limit=limit, window=1.0, clock=clock))
    logger.addHandler(lines)
    return logger, lines


def test_throttle_lets_20_lines_a_second_per_template_then_says_how_many_it_held():
    clock = Clock()
    logger, lines = throttled("flood", clock)
    for n in range(58_000):  # one polling POST of 58,000 CONNECT packets
        logger.info("malformed Engine.IO payload from %s", f"10.0.0.{n % 250}")
        if n == 100:
            logger.info("session %s opened", "abc")  # another template is not held back
    assert len(lines.records) == 21
    assert lines.messages()[20] == "session abc opened"
    clock.now += 0.999
    logger.info("malformed Engine.IO payload from %s", "10.0.0.1")
    assert len(lines.records) == 21  # still the same second
    clock.now += 0.001
    logger.info("malformed Engine.IO payload from %s", "10.0.0.2")
    assert lines.messages()[21:] == [
        "57981 similar lines suppressed: malformed Engine.IO payload from %s",
        "malformed Engine.IO payload from 10.0.0.2",
    ]
    assert lines.records[21].name == "throttle-test.flood"


def test_throttle_holds_back_warnings_and_errors_alike_and_summarises_at_the_highest_level():
    clock = Clock()
    logger, lines = throttled("levels", clock, limit=3)
    for _ in range(5):
        logger.warning("connection refused: origin %s is not allowed", "https://evil.test")
    for _ in range(5):
        logger.error("connection refused: origin %s is not allowed", "https://evil.test")
    assert [r.levelname for r in lines.records] == ["WARNING"] * 3
    clock.now += 1
    logger.info("something else")  # the next line of any template brings the summary
    assert lines.messages()[3:] == [
        "7 similar lines suppressed: connection refused: origin %s is not allowed",
        "something else",
    ]
    assert lines.records[3].levelname == "ERROR"
    clock.now += 5
    logger.info("something else")
    assert len(lines.records) == 6  # nothing was held back since: no summary


def test_throttle_remembers_a_bounded_number_of_templates():
    clock = Clock()
    throttle = logs.Throttle(limit=1, window=1.0, clock=clock, max_templates=100)
    for n in range(5_000):
        record = logging.LogRecord("gateway", logging.INFO, __file__, 1, f"line {n}", (), None)
        assert throttle.filter(record)
        clock.now += 0.001
    assert len(throttle._windows) <= 100


def test_the_gateway_handler_is_throttled():
    logs.configure("INFO", "json")
    assert any(isinstance(f, logs.Throttle) for f in gateway_handler().filters)
    # Engine.IO logs the first refused origin, raw, at ERROR: through the same handler.
    assert gateway_handler() in logging.getLogger("engineio.server").handlers
    logs.configure("INFO", "text")

"""Logging set-up: text for people, JSON lines for machines (``GATEWAY_LOG_FORMAT``).

Many lines carry what a client sent (an ``Origin`` or ``User-Agent`` header, a login
name), so both formats keep one record on one line whatever it holds: the text format
escapes every control character (C0, DEL, C1, and U+2028/U+2029) of the message and of
the traceback (``\\n``, ``\\r``, ``\\t``, ``\\xNN``, ``\\uNNNN``), and the JSON format escapes
those JSON leaves raw. And malformed traffic cannot flood the log: :class:`Throttle`
lets through at most :data:`THROTTLE_LINES` lines a second per message template, then
says how many it held back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOGGERS = ("gateway", "auth")
#: Libraries' loggers that log what a client sent (Engine.IO logs the first refused
#: origin at ERROR, with the raw ``Origin`` header): they get the same handler (escaped,
#: throttled) instead of a bare one; a level they were given is left alone.
LIBRARY_LOGGERS = ("engineio.server", "socketio.server")
#: Lines per message template (``record.msg``, before formatting) let through a window.
THROTTLE_LINES = 20
#: The throttle's window, in seconds.
THROTTLE_SECONDS = 1.0
#: Templates the throttle keeps track of at most (a message built with an f-string is a
#: template of its own).
THROTTLE_TEMPLATES = 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# json.dumps escapes C0 but leaves these raw (line breaks to str.splitlines and others).
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100
                                else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape: one line, always."""
    return _CONTROL.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """The text format; control characters escaped, so a record is one line, its
    traceback included (a client's ``\\r\\n`` cannot forge a line of its own)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}",
                             json.dumps(entry, ensure_ascii=False))


@dataclass
class _Window:
    start: float
    count: int = 0
    suppressed: int = 0
    levelno: int = logging.NOTSET
    logger: str = ""


class Throttle(logging.Filter):
    """At most ``limit`` records per ``window`` seconds per message template.

    The template is ``record.msg`` before formatting (``"connection refused: origin %s
    is not allowed"``), so a flood of one kind of line, whatever its arguments, costs
    ``limit`` lines a window, warnings and errors alike. Once a window with held-back
    lines is over, the next record that reaches the filter (of any template) first
    brings one line ``N similar lines suppressed: TEMPLATE``, logged on the same logger
    at the highest level held back. ``clock`` is injectable for tests.
    """

    def __init__(self, limit: int = THROTTLE_LINES, window: float = THROTTLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 max_templates: int = THROTTLE_TEMPLATES) -> None:
        super().__init__()
        self.limit, self.window, self.clock = limit, window, clock
        self.max_templates = max_templates
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._pending: dict[str, _Window] = {}  # windows that held lines back

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        template = msg if isinstance(msg, str) else f"<{type(msg).__name__}>"
        now = self.clock()
        with self._lock:
            due = self._due(now)
            window = self._windows.get(template)
            if window is None or now - window.start >= self.window:
                if window is None and len(self._windows) >= self.max_templates:
                    self._forget(now)
                window = self._windows[template] = _Window(now)
            window.count += 1
            allowed = window.count <= self.limit
            if not allowed:
                window.suppressed += 1
                window.levelno = max(window.levelno, record.levelno)
                window.logger = record.name
                self._pending[template] = window
        # Outside the lock: the summaries come back through this filter.
        for count, levelno, name, held in due:
            logging.getLogger(name).log(levelno, "%d similar lines suppressed: %s", count, held)
        return allowed

    def _due(self, now: float) -> list[tuple[int, int, str, str]]:
        """Take the summaries of the windows that are over."""
        due = []
        for template, window in list(self._pending.items()):
            if now - window.start >= self.window:
                del self._pending[template]
                due.append((window.suppressed, window.levelno, window.logger, template))
                window.suppressed = 0
        return due

    def _forget(self, now: float) -> None:
        """Bound the memory: drop windows that are over, else the oldest half."""
        for template, window in list(self._windows.items()):
            if now - window.start >= self.window and template not in self._pending:
                del self._windows[template]
        if len(self._windows) >= self.max_templates:
            for template in list(self._windows)[: len(self._windows) // 2]:
                if template not in self._pending:
                    del self._windows[template]


def configure(level: str, fmt: str) -> None:
    """Give the gateway's loggers one stderr handler (idempotent), throttled.

    The :class:`Throttle` sits on the handler rather than on each logger: a logger's
    filters see only the records logged on that very logger, and the handler also gets
    those of their children (``gateway.session``, ``gateway.admin``, ...).
    """
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Throttle())
    handler._gateway = True  # type: ignore[attr-defined]
    for name in LOGGERS + LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if name in LOGGERS:
            logger.setLevel(level.upper())
        elif logger.level == logging.NOTSET:
            # What python-engineio/-socketio set with logger=False; set first (create_app
            # configures logging before Flask-SocketIO), it also keeps them from adding
            # a bare StreamHandler of their own, which would write every line raw.
            logger.setLevel(logging.ERROR)
        for old in [h for h in logger.handlers if getattr(h, "_gateway", False)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False

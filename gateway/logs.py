"""Logging set-up: text for people, JSON lines for machines (``GATEWAY_LOG_FORMAT``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

LOGGERS = ("gateway", "auth")


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
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Give the gateway's loggers one stderr handler (idempotent)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        for old in [h for h in logger.handlers if getattr(h, "_gateway", False)]:
            logger.removeHandler(old)
        handler._gateway = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False

"""Which browser origins may open a Socket.IO connection (``GATEWAY_ALLOWED_ORIGINS``).

The page's own origin is always allowed; beyond it, exact origins and shell-style
patterns (``https://*.example.com``). ``*`` allows every origin, and only when it is
configured explicitly. A cross-site page that tries to connect with the user's cookie
(cross-site WebSocket hijacking) is refused by Engine.IO before any handler runs, over
WebSocket and over long-polling alike.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("gateway")


class OriginPolicy:
    """A callable for Engine.IO's ``cors_allowed_origins``: ``policy(origin, environ)``."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.patterns: list[str] = []
        for entry in allowed:
            entry = entry.strip().rstrip("/")
            if not entry:
                continue
            if any(c in entry for c in "*?["):
                self.patterns.append(entry.lower())
            else:
                self.exact.add(entry.lower())

    @staticmethod
    def own_origin(environ: Mapping[str, Any]) -> str | None:
        host = environ.get("HTTP_HOST")
        if not host:
            return None
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}".lower()

    def __call__(self, origin: str | None, environ: Mapping[str, Any] | None = None) -> bool:
        if origin is None:
            return True  # not a browser: no cookie-riding page to defend against
        origin = origin.lower()
        if environ is not None and origin == self.own_origin(environ):
            return True
        if origin in self.exact or any(fnmatch.fnmatchcase(origin, p) for p in self.patterns):
            return True
        logger.warning("connection refused: origin %s is not allowed", origin[:200])
        return False


def cors_setting(allowed: list[str]) -> Any:
    """What to give Engine.IO: ``"*"`` only when configured so, else an OriginPolicy."""
    if [entry.strip() for entry in allowed] == ["*"]:
        return "*"
    return OriginPolicy(allowed)

"""Which browser origins may open a Socket.IO connection (``GATEWAY_ALLOWED_ORIGINS``).

The page's own origin is always allowed; beyond it, exact origins and patterns
(``https://*.example.com``). ``*`` alone allows every origin, and only when it is
configured explicitly. A cross-site page that tries to connect with the user's cookie
(cross-site WebSocket hijacking) is refused by Engine.IO before any handler runs, over
WebSocket and over long-polling alike.

An entry without ``*`` is an exact origin (``http://[::1]:5000`` included), compared
case-insensitively. In a pattern only ``*`` is special (``?`` and ``[...]`` are plain
characters), and it stands for any run of letters, digits and ``-`` within one DNS
label: never a ``.``, so ``https://*.example.com`` admits ``https://a.example.com`` but
not ``https://a.b.example.com`` (write ``https://*.*.example.com`` for that), and a
``*`` can never reach past the domain it sits in (``https://*.example.*`` does not admit
``https://a.example.evil.test``); and never ``/``, ``?``, ``#``, ``@`` or ``:``, so no
path, query, fragment, user info or port can be smuggled into the host part
(``https://evil.test/.example.com``, ``https://x@evil.test``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("gateway")

#: What a ``*`` of a pattern matches: host characters within one label.
WILDCARD = "[a-z0-9-]*"


def compile_pattern(entry: str) -> re.Pattern[str]:
    """The regular expression of an origin pattern (lower case; see the module)."""
    parts = entry.lower().split("*")
    return re.compile(WILDCARD.join(re.escape(part) for part in parts))


class OriginPolicy:
    """A callable for Engine.IO's ``cors_allowed_origins``: ``policy(origin, environ)``."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.patterns: list[re.Pattern[str]] = []
        self.any = False
        for entry in allowed:
            entry = entry.strip().rstrip("/")
            if not entry:
                continue
            if entry == "*":
                self.any = True
            elif "*" in entry:
                self.patterns.append(compile_pattern(entry))
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
        if self.any or origin in self.exact or any(p.fullmatch(origin) for p in self.patterns):
            return True
        logger.warning("connection refused: origin %s is not allowed", origin[:200])
        return False


def cors_setting(allowed: list[str]) -> Any:
    """What to give Engine.IO: ``"*"`` only when configured so, else an OriginPolicy."""
    if [entry.strip() for entry in allowed] == ["*"]:
        return "*"
    return OriginPolicy(allowed)

"""The realtime session gateway: authenticated server-side sessions over Socket.IO.

The package is layered; each sub-package's README gives its rule:

- :mod:`gateway.core`: sessions, delivery, the protocol, registry, presence: IO-free.
- :mod:`gateway.cluster`: the hub of a worker, the bus between workers, Redis.
- :mod:`gateway.transport`: Socket.IO handlers, the connection guard, the WSGI server.
- :mod:`gateway.web`: the Flask extension, app factory, pages, API, admin and CLI.

``from gateway import Emitter`` (for a Celery task or a script) needs only ``redis``:
the names that need Flask are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from .cluster.emitter import Emitter
from .core.errors import GatewayError
from .core.errors import SessionClosed
from .core.session import Event
from .core.session import Session
from .core.session import SessionState
from .core.targets import Target

if TYPE_CHECKING:
    from .web.app import create_app
    from .web.extension import Gateway
    from .web.extension import gateway
    from .web.extension import hub_for
    from .web.extension import socketio

__all__ = [
    "Emitter", "Event", "Gateway", "GatewayError", "Session", "SessionClosed", "SessionState",
    "Target", "create_app", "gateway", "hub_for", "socketio",
]

_WEB = {"Gateway": "extension", "gateway": "extension", "hub_for": "extension",
        "socketio": "extension", "create_app": "app"}


def __getattr__(name: str) -> Any:
    """The Flask side of the API, imported on first use (PEP 562)."""
    module = _WEB.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f"{__name__}.web.{module}"), name)
    globals()[name] = value
    return value

"""Session apps: what ``@gateway.app`` and ``@gateway.on`` register."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from .protocol import APP_NAME
from .protocol import EVENT_NAME

if TYPE_CHECKING:
    from .session import Session

MainFunction = Callable[["Session"], Any]
EventHandler = Callable[["Session", Any], Any]


@dataclass
class AppSpec:
    """A session app: an optional main function and reactive event handlers."""

    name: str
    main: MainFunction | None = None
    #: Keep the session open after ``main`` returns (for reactive apps).
    keep_open: bool = False
    title: str = ""
    description: str = ""
    handlers: dict[str, EventHandler] = field(default_factory=dict)  # event name -> handler

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title or self.name.title(),
                "description": self.description}


class AppCatalog:
    """The session apps known to a :class:`Gateway`, by name."""

    def __init__(self) -> None:
        self._apps: dict[str, AppSpec] = {}  # app name -> spec

    def __contains__(self, name: str) -> bool:
        return name in self._apps

    def __iter__(self) -> Iterator[AppSpec]:
        return iter(sorted(self._apps.values(), key=lambda spec: spec.name))

    def get(self, name: str) -> AppSpec | None:
        return self._apps.get(name)

    def _spec(self, name: str) -> AppSpec:
        if not APP_NAME.fullmatch(name):
            raise ValueError(f"App name {name!r} must match {APP_NAME.pattern}.")
        return self._apps.setdefault(name, AppSpec(name=name))

    def register(self, name: str, main: MainFunction | None, *, keep_open: bool = False,
                 title: str = "", description: str = "") -> AppSpec:
        spec = self._spec(name)
        if main is not None and spec.main is not None and spec.main is not main:
            raise ValueError(f"App {name!r} already has a main function ({spec.main!r}).")
        spec.main = main or spec.main
        spec.keep_open = keep_open or main is None
        spec.title = title or spec.title
        if description or main is not None:
            spec.description = description or (main.__doc__ or "").strip()
        return spec

    def add_handler(self, app: str, event: str, handler: EventHandler) -> None:
        if not EVENT_NAME.fullmatch(event):
            raise ValueError(f"Event name {event!r} must match {EVENT_NAME.pattern}.")
        spec = self._spec(app)
        if event in spec.handlers and spec.handlers[event] is not handler:
            raise ValueError(f"App {app!r} already handles {event!r}.")
        spec.handlers[event] = handler
        if spec.main is None:
            spec.keep_open = True


def import_apps(modules: Iterable[str]) -> None:
    """Import the modules that register session apps (``GATEWAY_APPS``)."""
    for module in modules:
        importlib.import_module(module)

"""The Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from flask_socketio import SocketIO

from .extension import Gateway

socketio = SocketIO()
gateway = Gateway()

"""The package's imports in a fresh Python process: ``gateway.Emitter`` needs neither Flask
nor Socket.IO."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.support import ROOT


def test_the_emitter_needs_neither_flask_nor_socketio() -> None:
    """A Celery task imports ``gateway.Emitter`` with only ``redis`` installed: importing
    it must not import Flask, Flask-SocketIO or the Socket.IO server."""
    code = ("import sys; from gateway import Emitter, Target, SessionClosed; "
            "print(sorted(m for m in ('flask', 'flask_socketio', 'socketio', 'engineio', "
            "'eventlet', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"

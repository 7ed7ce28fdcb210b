"""The realtime session gateway: authenticated server-side sessions over Socket.IO."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .bus import Emitter
from .bus import Target
from .errors import GatewayError
from .errors import SessionClosed
from .extension import Gateway
from .extensions import gateway
from .extensions import socketio
from .session import Event
from .session import Session
from .session import SessionState

__all__ = [
    "Emitter", "Event", "Gateway", "GatewayError", "Session", "SessionClosed", "SessionState",
    "Target", "create_app", "gateway", "socketio",
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app: defaults, then ``GATEWAY_*`` environment, then ``config``."""
    from . import api
    from . import cli
    from . import config as settings_module
    from . import http
    from . import logs
    from . import sockets  # noqa: F401  (registers the Socket.IO handlers)
    from .apps import import_apps
    from .origins import cors_setting

    import auth

    settings = settings_module.load(overrides=config)
    static = os.path.join(ROOT, "static")
    app = Flask(__name__, static_folder=static,
                template_folder=os.path.join(static, "pages"),
                instance_path=os.path.join(ROOT, "instance"))
    app.config.update(
        GATEWAY=settings,
        SECRET_KEY=settings["SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"]
        or "sqlite:///" + os.path.join(app.instance_path, "gateway.db"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.from_prefixed_env()  # FLASK_* variables, as Flask documents
    for key, value in (config or {}).items():
        if not key.startswith("GATEWAY_"):
            app.config[key] = value  # plain Flask settings a caller (a test) overrides
    logs.configure(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    os.makedirs(app.instance_path, exist_ok=True)

    auth.init_app(app)
    socketio.init_app(
        app,
        async_mode=settings["ASYNC_MODE"],
        # Never an empty list: to Engine.IO that turns the origin check off.
        cors_allowed_origins=cors_setting(settings["ALLOWED_ORIGINS"]),
        # Events of one connection are handled inline, in arrival order.
        async_handlers=False,
        # The connect handler only reads the login cookie: no per-connection copy of
        # the Flask session to keep (Flask-SocketIO's default) for every idle socket.
        manage_session=False,
        max_http_buffer_size=max(1_000_000, 2 * settings["MAX_EVENT_BYTES"]),
        # Users' own socketio.emit calls reach every worker; the gateway's sends use
        # its own bus and never travel through this queue (see extension.py).
        message_queue=settings["MESSAGE_QUEUE"],
        channel=f"{settings['BUS_CHANNEL']}-socketio",
        logger=False,
        engineio_logger=False,
    )
    hub = gateway.init_app(app, socketio)
    sockets.install_message_handlers(app, hub)
    # A bound method rather than the instance: Python calls it without recursing into C,
    # and every idle WebSocket's green thread keeps that C stack for its lifetime.
    app.wsgi_app = sockets.EngineGuard(  # type: ignore[method-assign]
        app.wsgi_app, max_bytes=socketio.server.eio.max_http_buffer_size,
        compression=settings["WEBSOCKET_COMPRESSION"],
        admission=app.extensions["gateway.guard"].admission).__call__
    # Outside Flask-SocketIO's middleware (it passes the app a copy of the environ).
    app.wsgi_app = api.unbuffered_stream(app.wsgi_app)  # type: ignore[method-assign]
    if settings["PROXY_FIX"]:
        # Outermost, so Flask (Secure cookies, remote address) and Engine.IO (the
        # same-origin check) all see the client's scheme, host and address.
        hops = settings["PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)
    app.register_blueprint(http.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(cli.bp)
    auth.csrf.exempt(api.push)  # bearer tokens, not cookies: nothing to forge
    import_apps(settings["APPS"])
    if settings["CREATE_TABLES"]:
        with app.app_context():
            auth.db.create_all()
    # Issue 5: the admin API and `admin` app; live sessions follow their account.
    from . import accounts
    from . import admin
    app.register_blueprint(admin.bp)
    admin.init_hub(app.extensions["gateway"])
    accounts.watch(app.extensions["gateway"], settings["ACCOUNT_CHECK_SECONDS"])
    # The bus and periodic tasks start with the first request this process serves,
    # so CLI commands that load the app (flask users ...) never join the cluster.
    # (gunicorn.conf.py and python wsgi.py start it at once; this covers other servers.)
    serve = app.wsgi_app

    def start_hub_then_serve(environ: dict[str, Any], start_response: Any) -> Any:
        app.extensions["gateway"].start()
        app.wsgi_app = serve  # type: ignore[method-assign]  # out of the way from now on
        return serve(environ, start_response)

    app.wsgi_app = start_hub_then_serve  # type: ignore[method-assign]
    return app

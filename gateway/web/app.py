"""The app factory: settings, the extensions, the blueprints, and the WSGI stack."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import auth

from .. import logs
from .. import settings as settings_module
from ..cluster.hub import Hub
from ..core.apps import import_apps
from ..transport import sockets
from ..transport.origins import cors_setting
from . import accounts
from . import admin
from . import api
from . import cli
from . import pages
from .extension import gateway
from .extension import runtime_for
from .extension import socketio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def static_root() -> str:
    """``static/`` of a checkout, or the ``gateway_static`` data package of an install."""
    checkout = os.path.join(ROOT, "static")
    if os.path.isdir(os.path.join(checkout, "pages")):
        return checkout
    spec = importlib.util.find_spec("gateway_static")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The gateway's static files are missing: reinstall the package.")
    return list(spec.submodule_search_locations)[0]

WSGIApp = Callable[[dict[str, Any], Any], Any]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app: defaults, then ``GATEWAY_*`` environment, then ``config``."""
    settings = settings_module.load(overrides=config)
    static = static_root()
    # A checkout keeps its instance folder (secret key, SQLite) beside static/; an
    # installed package gets Flask's default, <prefix>/var/gateway-instance.
    checkout = static == os.path.join(ROOT, "static")
    app = Flask("gateway", static_folder=static, static_url_path="/static",
                template_folder=os.path.join(static, "pages"),
                instance_path=os.path.join(ROOT, "instance") if checkout else None)
    app.config.update(
        GATEWAY=settings,
        SECRET_KEY=settings.SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=settings.DATABASE_URL
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
    logs.configure(settings.LOG_LEVEL, settings.LOG_FORMAT)
    os.makedirs(app.instance_path, exist_ok=True)

    auth.init_app(app)
    socketio.init_app(
        app,
        async_mode=settings.ASYNC_MODE,
        # Never an empty list: to Engine.IO that turns the origin check off.
        cors_allowed_origins=cors_setting(settings.ALLOWED_ORIGINS),
        # Events of one connection are handled inline, in arrival order.
        async_handlers=False,
        # The connect handler only reads the login cookie: no per-connection copy of
        # the Flask session to keep (Flask-SocketIO's default) for every idle socket.
        manage_session=False,
        max_http_buffer_size=max(1_000_000, 2 * settings.MAX_EVENT_BYTES),
        # Users' own socketio.emit calls reach every worker; the gateway's sends use
        # its own bus and never travel through this queue (see extension.py).
        message_queue=settings.MESSAGE_QUEUE,
        channel=f"{settings.BUS_CHANNEL}-socketio",
        logger=False,
        engineio_logger=False,
    )
    hub = gateway.init_app(app, socketio)
    sockets.install_handlers(app, socketio, hub.connections, runtime_for(app).guard)
    app.wsgi_app = build_middleware_stack(app, hub)  # type: ignore[method-assign,assignment]
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(admin.bp)
    auth.csrf.exempt(api.push)  # bearer tokens, not cookies: nothing to forge
    import_apps(settings.APPS)
    if settings.CREATE_TABLES:
        with app.app_context():
            auth.db.create_all()
    # The admin API and `admin` app; live sessions follow their account.
    admin.init_hub(hub)
    accounts.watch(hub, settings.ACCOUNT_CHECK_SECONDS)
    return app


def build_middleware_stack(app: Flask, hub: Hub) -> WSGIApp:
    """The WSGI stack around Flask-SocketIO's middleware (``app.wsgi_app``), outermost
    last in this list:

    1. :class:`~gateway.transport.sockets.EngineGuard`: refuses bad Engine.IO requests
       before Engine.IO reads them.
    2. :func:`~gateway.web.api.unbuffered_stream`: outside Flask-SocketIO's middleware,
       which passes the app a copy of the environ.
    3. ``ProxyFix`` when ``GATEWAY_PROXY_FIX`` is set: outermost, so Flask (Secure
       cookies, remote address) and Engine.IO (the same-origin check) all see the
       client's scheme, host and address.
    4. Start the hub on the first request: the bus and periodic tasks start with the
       first request this process serves, so CLI commands that load the app (``flask
       users ...``) never join the cluster. (gunicorn.conf.py and ``python wsgi.py``
       start it at once; this covers other servers.) It steps out of the way after.
    """
    settings: settings_module.Settings = app.config["GATEWAY"]
    # Bound methods rather than instances: Python calls them without recursing into C,
    # and every idle WebSocket's green thread keeps that C stack for its lifetime.
    stack: WSGIApp = sockets.EngineGuard(
        app.wsgi_app, max_bytes=socketio.server.eio.max_http_buffer_size,
        compression=settings.WEBSOCKET_COMPRESSION,
        admission=runtime_for(app).guard.admission).__call__
    stack = api.unbuffered_stream(stack)
    if settings.PROXY_FIX:
        hops = settings.PROXY_FIX
        stack = ProxyFix(stack, x_for=hops, x_proto=hops, x_host=hops)
    serve = stack

    def start_hub_then_serve(environ: dict[str, Any], start_response: Any) -> Any:
        hub.start()
        app.wsgi_app = serve  # type: ignore[method-assign,assignment]
        return serve(environ, start_response)

    return start_hub_then_serve

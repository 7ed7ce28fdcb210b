"""Configuration: every ``GATEWAY_*`` key, its default, and how it is read.

Order of precedence: the defaults below, then environment variables, then the
mapping a caller (usually a test) passes to ``create_app``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .core.errors import ConfigError

#: Secret used to sign the login cookie. Required outside development.
SECRET_KEY = "dev-insecure-secret-key"
#: "development" allows the default secret key; anything else requires a real one.
ENV = "production"
#: SQLAlchemy URL of the user database; None means SQLite under ``instance/``.
DATABASE_URL: str | None = None
#: Message queue URL (``redis://...``); unset means one process.
MESSAGE_QUEUE: str | None = None
#: Accept permessage-deflate on WebSockets (a zlib context per connection: ~2x memory).
WEBSOCKET_COMPRESSION = False
#: Listen backlog of the embedded server (gunicorn.conf.py reads it too).
BACKLOG = 2048
#: Prefix of the Redis keys of the bus (several gateways can share one Redis).
BUS_CHANNEL = "gateway"
#: Seconds between presence heartbeats; a dead worker's users are gone after 3 beats.
PRESENCE_SECONDS = 5.0
#: Origins allowed to open a Socket.IO connection. Empty: same origin only.
ALLOWED_ORIGINS: list[str] = []
#: How long a detached session waits for its client to come back.
RESUME_SECONDS = 60.0
#: Unacknowledged commands kept per session before it is closed as a slow consumer.
REPLAY_LIMIT = 5000
#: Largest accepted ``event`` payload, in bytes of JSON.
MAX_EVENT_BYTES = 64 * 1024
#: Sustained events per second per session (token bucket refill rate).
EVENT_RATE = 50.0
#: Burst size of the per-session event bucket.
EVENT_BURST = 100
#: Live (attached or detached) sessions one user may hold on this worker.
MAX_SESSIONS_PER_USER = 20
#: Live sessions one worker holds at most.
MAX_SESSIONS = 10_000
#: Events refused in a row for the rate limit after which the session is ended (flooding).
ABUSE_LIMIT = 500
#: Bytes of JSON of the unacknowledged commands kept per session before it is closed as
#: a slow consumer (the replay buffer is bounded in bytes as well as in commands).
REPLAY_BYTES = 2 * 1024 * 1024
#: Seconds a new connection has to send its request headers, and then to complete its
#: Socket.IO CONNECT after the Engine.IO handshake; it is closed after that.
HANDSHAKE_SECONDS = 10.0
#: Connections without a session (waiting for their headers or for a Socket.IO CONNECT)
#: this worker holds at once; more are refused.
MAX_ANONYMOUS = 1024
#: The same, per client address (behind a proxy, with GATEWAY_PROXY_FIX, the client's).
MAX_ANONYMOUS_PER_ADDRESS = 64
#: Inbound WebSocket frames per second one connection may send (token bucket); beyond
#: it the worker stops reading that connection until it is back under the rate.
INBOUND_RATE = 1000.0
#: Burst size of that inbound bucket.
INBOUND_BURST = 2000
#: Modules imported at start-up that register session apps.
APPS = [
    "gateway.demos.hello",
    "gateway.demos.echo",
    "gateway.demos.chat",
    "gateway.demos.progress",
]
#: Where ``python wsgi.py`` listens.
HOST = "127.0.0.1"
PORT = 5000
#: Logging level name and format ("text" or "json").
LOG_LEVEL = "INFO"
LOG_FORMAT = "text"
#: Flask-SocketIO async mode: "eventlet" (default) or "threading".
ASYNC_MODE = "eventlet"
#: Events a session app has not yet received, beyond which new ones are refused.
INBOX_LIMIT = 1000
#: Recent event results remembered per session for exactly-once handling.
EVENT_MEMORY = 256
#: Most commands sent in one ``commands`` message.
MAX_BATCH = 256
#: Create the database tables at start-up when missing.
CREATE_TABLES = True
#: Secure flag of the login cookie: "auto" (when the request is HTTPS), "true" or "false".
COOKIE_SECURE = "auto"
#: Proxies in front whose X-Forwarded-For/-Proto/-Host headers are trusted (0: none).
PROXY_FIX = 0
#: On SIGTERM, how long to wait for clients to receive their close before exiting.
DRAIN_SECONDS = 10.0
#: Failed logins per account name within the window before its logins are refused (429).
LOGIN_LIMIT_ACCOUNT = 5
#: Failed logins per client address within the window before its logins are refused (429).
LOGIN_LIMIT_ADDRESS = 20
#: The window, in seconds, over which failed logins are counted.
LOGIN_WINDOW_SECONDS = 900.0
#: How often each worker checks that its sessions' accounts are unchanged (disabled,
#: deleted, password changed: their sessions are closed ``logged_out``).
ACCOUNT_CHECK_SECONDS = 5.0

_TYPES: dict[str, type] = {
    "RESUME_SECONDS": float,
    "DRAIN_SECONDS": float,
    "LOGIN_LIMIT_ACCOUNT": int,
    "LOGIN_LIMIT_ADDRESS": int,
    "LOGIN_WINDOW_SECONDS": float,
    "ACCOUNT_CHECK_SECONDS": float,
    "PRESENCE_SECONDS": float,
    "WEBSOCKET_COMPRESSION": bool,
    "BACKLOG": int,
    "PROXY_FIX": int,
    "REPLAY_LIMIT": int,
    "MAX_EVENT_BYTES": int,
    "EVENT_RATE": float,
    "EVENT_BURST": int,
    "MAX_SESSIONS_PER_USER": int,
    "MAX_SESSIONS": int,
    "ABUSE_LIMIT": int,
    "REPLAY_BYTES": int,
    "HANDSHAKE_SECONDS": float,
    "MAX_ANONYMOUS": int,
    "MAX_ANONYMOUS_PER_ADDRESS": int,
    "INBOUND_RATE": float,
    "INBOUND_BURST": int,
    "PORT": int,
    "INBOX_LIMIT": int,
    "EVENT_MEMORY": int,
    "MAX_BATCH": int,
    "CREATE_TABLES": bool,
    "APPS": list,
    "ALLOWED_ORIGINS": list,
}

KEYS = [
    "SECRET_KEY", "ENV", "DATABASE_URL", "MESSAGE_QUEUE", "ALLOWED_ORIGINS",
    "RESUME_SECONDS", "REPLAY_LIMIT", "MAX_EVENT_BYTES", "EVENT_RATE", "EVENT_BURST",
    "MAX_SESSIONS_PER_USER", "MAX_SESSIONS", "ABUSE_LIMIT", "APPS", "HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT",
    "ASYNC_MODE", "INBOX_LIMIT", "EVENT_MEMORY", "MAX_BATCH", "CREATE_TABLES", "DRAIN_SECONDS",
    "COOKIE_SECURE", "PROXY_FIX", "LOGIN_LIMIT_ACCOUNT", "LOGIN_LIMIT_ADDRESS",
    "LOGIN_WINDOW_SECONDS", "ACCOUNT_CHECK_SECONDS", "BUS_CHANNEL", "PRESENCE_SECONDS",
    "WEBSOCKET_COMPRESSION", "BACKLOG", "REPLAY_BYTES", "HANDSHAKE_SECONDS", "MAX_ANONYMOUS",
    "MAX_ANONYMOUS_PER_ADDRESS", "INBOUND_RATE", "INBOUND_BURST",
]


def _convert(key: str, value: Any) -> Any:
    kind = _TYPES.get(key)
    if kind is None or not isinstance(value, str):
        return value
    try:
        if kind is bool:
            return value.strip().lower() in ("1", "true", "yes", "on")
        if kind is list:
            return [part.strip() for part in value.split(",") if part.strip()]
        return kind(value)
    except ValueError:
        raise ConfigError(
            f"GATEWAY_{key}={value!r} is not a valid {kind.__name__}."
        ) from None


def load(environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the ``GATEWAY_*`` settings: defaults, then environment, then overrides."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for key in KEYS:
        value = globals()[key]
        settings[key] = list(value) if isinstance(value, list) else value
        env_value = environ.get(f"GATEWAY_{key}")
        if env_value is not None and env_value != "":
            settings[key] = _convert(key, env_value)
    for name, value in (overrides or {}).items():
        if not name.startswith("GATEWAY_"):
            continue  # a plain Flask setting, not ours
        key = name[len("GATEWAY_"):]
        if key not in settings:
            raise ConfigError(f"Unknown setting {name}; see the table in the README.")
        settings[key] = _convert(key, value)
    validate(settings)
    return settings


def validate(settings: Mapping[str, Any]) -> None:
    """Fail early, saying what is wrong and how to fix it."""
    if settings["ENV"] != "development" and settings["SECRET_KEY"] == SECRET_KEY:
        raise ConfigError(
            "GATEWAY_SECRET_KEY is missing: set it to a long random string "
            "(or set GATEWAY_ENV=development to use the insecure default)."
        )
    if settings["ASYNC_MODE"] not in ("eventlet", "threading", "gevent"):
        raise ConfigError(
            "GATEWAY_ASYNC_MODE must be one of eventlet, threading, gevent."
        )
    if settings["COOKIE_SECURE"] not in ("auto", "true", "false"):
        raise ConfigError("GATEWAY_COOKIE_SECURE must be auto, true or false.")
    if settings["PROXY_FIX"] < 0:
        raise ConfigError("GATEWAY_PROXY_FIX must be 0 or the number of proxies in front.")
    if settings["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError("GATEWAY_LOG_FORMAT must be 'text' or 'json'.")
    queue = settings["MESSAGE_QUEUE"]
    if queue and not str(queue).startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("GATEWAY_MESSAGE_QUEUE must be a redis://, rediss:// or unix:// URL.")
    if settings["PRESENCE_SECONDS"] <= 0:
        raise ConfigError("GATEWAY_PRESENCE_SECONDS must be positive.")
    for key in ("REPLAY_LIMIT", "MAX_EVENT_BYTES", "MAX_SESSIONS_PER_USER", "MAX_SESSIONS",
                "ABUSE_LIMIT", "REPLAY_BYTES", "MAX_ANONYMOUS", "MAX_ANONYMOUS_PER_ADDRESS",
                "INBOUND_BURST", "INBOX_LIMIT", "EVENT_MEMORY", "MAX_BATCH", "EVENT_BURST",
                "LOGIN_LIMIT_ACCOUNT", "LOGIN_LIMIT_ADDRESS"):
        if settings[key] < 1:
            raise ConfigError(f"GATEWAY_{key} must be at least 1.")
    for key in ("LOGIN_WINDOW_SECONDS", "ACCOUNT_CHECK_SECONDS", "HANDSHAKE_SECONDS",
                "INBOUND_RATE"):
        if settings[key] <= 0:
            raise ConfigError(f"GATEWAY_{key} must be a number of seconds above 0.")
    if settings["RESUME_SECONDS"] < 0 or settings["EVENT_RATE"] <= 0:
        raise ConfigError(
            "GATEWAY_RESUME_SECONDS must be >= 0 and GATEWAY_EVENT_RATE > 0."
        )

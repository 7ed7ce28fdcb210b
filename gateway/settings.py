"""Configuration: every ``GATEWAY_*`` setting, declared once, and how it is read.

Each setting is one field of :class:`Settings`: its name is the variable's without
``GATEWAY_`` (``GATEWAY_MAX_SESSIONS`` is ``settings.MAX_SESSIONS``), its annotation
is its type (which also says how a string is read: see :func:`parse`), and
:func:`setting` gives its default, its doc and, where a value can be wrong, its check.

Order of precedence: the defaults, then environment variables, then the mapping a
caller (usually a test) passes to ``create_app``. :func:`load` builds the object and
:func:`validate` fails early on a wrong value.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .core.errors import ConfigError

#: The default secret key, accepted only with ``GATEWAY_ENV=development``.
DEV_SECRET_KEY = "dev-insecure-secret-key"

#: The environment variable (and override key) of a setting is this prefix + its name.
PREFIX = "GATEWAY_"


@dataclass(frozen=True)
class Check:
    """What a setting's value must satisfy, and what to say when it does not
    (``{name}`` is the variable's name, ``GATEWAY_...``)."""

    ok: Callable[[Any], bool]
    message: str


AT_LEAST_1 = Check(lambda value: value >= 1, "{name} must be at least 1.")
SECONDS_ABOVE_0 = Check(lambda value: value > 0, "{name} must be a number of seconds above 0.")
# One message for the two, as it always was.
_RESUME_AND_RATE = "GATEWAY_RESUME_SECONDS must be >= 0 and GATEWAY_EVENT_RATE > 0."


def setting(default: Any, doc: str, check: Check | None = None) -> Any:
    """A field of :class:`Settings`: its default, what it is for, and its check."""
    metadata = {"doc": doc, "check": check}
    if isinstance(default, list):
        return dataclasses.field(default_factory=functools.partial(list, default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """The ``GATEWAY_*`` settings of one app (``app.config["GATEWAY"]``)."""

    SECRET_KEY: str = setting(
        DEV_SECRET_KEY, "Secret used to sign the login cookie. Required outside development.")
    ENV: str = setting(
        "production",
        '"development" allows the default secret key; anything else requires a real one.')
    DATABASE_URL: str | None = setting(
        None, "SQLAlchemy URL of the user database; None means SQLite under ``instance/``.")
    MESSAGE_QUEUE: str | None = setting(
        None, "Message queue URL (``redis://...``); unset means one process.",
        Check(lambda queue: not queue or str(queue).startswith(("redis://", "rediss://",
                                                                "unix://")),
              "{name} must be a redis://, rediss:// or unix:// URL."))
    WEBSOCKET_COMPRESSION: bool = setting(
        False, "Accept permessage-deflate on WebSockets (a zlib context per connection: "
        "~2x memory).")
    BACKLOG: int = setting(
        2048, "Listen backlog of the embedded server (gunicorn.conf.py reads it too).")
    BUS_CHANNEL: str = setting(
        "gateway", "Prefix of the Redis keys of the bus (several gateways can share one Redis).")
    PRESENCE_SECONDS: float = setting(
        5.0, "Seconds between presence heartbeats; a dead worker's users are gone after 3 beats.",
        Check(lambda value: value > 0, "{name} must be positive."))
    ALLOWED_ORIGINS: list[str] = setting(
        [], "Origins allowed to open a Socket.IO connection. Empty: same origin only.")
    RESUME_SECONDS: float = setting(
        60.0, "How long a detached session waits for its client to come back.",
        Check(lambda value: value >= 0, _RESUME_AND_RATE))
    REPLAY_LIMIT: int = setting(
        5000, "Unacknowledged commands kept per session before it is closed as a slow "
        "consumer.", AT_LEAST_1)
    MAX_EVENT_BYTES: int = setting(
        64 * 1024, "Largest accepted ``event`` payload, in bytes of JSON.", AT_LEAST_1)
    EVENT_RATE: float = setting(
        50.0, "Sustained events per second per session (token bucket refill rate).",
        Check(lambda value: value > 0, _RESUME_AND_RATE))
    EVENT_BURST: int = setting(100, "Burst size of the per-session event bucket.", AT_LEAST_1)
    MAX_SESSIONS_PER_USER: int = setting(
        20, "Live (attached or detached) sessions one user may hold on this worker.",
        AT_LEAST_1)
    MAX_SESSIONS: int = setting(10_000, "Live sessions one worker holds at most.", AT_LEAST_1)
    ABUSE_LIMIT: int = setting(
        500, "Events refused in a row for the rate limit after which the session is ended "
        "(flooding).", AT_LEAST_1)
    REPLAY_BYTES: int = setting(
        2 * 1024 * 1024, "Bytes of JSON of the unacknowledged commands kept per session "
        "before it is closed as a slow consumer (the replay buffer is bounded in bytes as "
        "well as in commands).", AT_LEAST_1)
    HANDSHAKE_SECONDS: float = setting(
        10.0, "Seconds a new connection has to send its request headers, and then to "
        "complete its Socket.IO CONNECT after the Engine.IO handshake; it is closed after "
        "that.", SECONDS_ABOVE_0)
    MAX_ANONYMOUS: int = setting(
        1024, "Connections without a session (waiting for their headers or for a Socket.IO "
        "CONNECT) this worker holds at once; more are refused.", AT_LEAST_1)
    MAX_ANONYMOUS_PER_ADDRESS: int = setting(
        64, "The same, per client address (behind a proxy, with GATEWAY_PROXY_FIX, the "
        "client's).", AT_LEAST_1)
    INBOUND_RATE: float = setting(
        1000.0, "Inbound WebSocket frames per second one connection may send (token "
        "bucket); beyond it the worker stops reading that connection until it is back "
        "under the rate.", SECONDS_ABOVE_0)
    INBOUND_BURST: int = setting(2000, "Burst size of that inbound bucket.", AT_LEAST_1)
    APPS: list[str] = setting(
        ["gateway.demos.hello", "gateway.demos.echo", "gateway.demos.chat",
         "gateway.demos.progress"],
        "Modules imported at start-up that register session apps.")
    HOST: str = setting("127.0.0.1", "Where ``python wsgi.py`` listens: the address.")
    PORT: int = setting(5000, "Where ``python wsgi.py`` listens: the port.")
    LOG_LEVEL: str = setting("INFO", "Logging level name.")
    LOG_FORMAT: str = setting(
        "text", 'Logging format: "text" or "json".',
        Check(lambda value: value in ("text", "json"), "{name} must be 'text' or 'json'."))
    ASYNC_MODE: str = setting(
        "eventlet", 'Flask-SocketIO async mode: "eventlet" (default) or "threading".',
        Check(lambda value: value in ("eventlet", "threading", "gevent"),
              "{name} must be one of eventlet, threading, gevent."))
    INBOX_LIMIT: int = setting(
        1000, "Events a session app has not yet received, beyond which new ones are refused.",
        AT_LEAST_1)
    EVENT_MEMORY: int = setting(
        256, "Recent event results remembered per session for exactly-once handling.",
        AT_LEAST_1)
    MAX_BATCH: int = setting(256, "Most commands sent in one ``commands`` message.", AT_LEAST_1)
    CREATE_TABLES: bool = setting(True, "Create the database tables at start-up when missing.")
    COOKIE_SECURE: str = setting(
        "auto", 'Secure flag of the login cookie: "auto" (when the request is HTTPS), "true" '
        'or "false".',
        Check(lambda value: value in ("auto", "true", "false"),
              "{name} must be auto, true or false."))
    PROXY_FIX: int = setting(
        0, "Proxies in front whose X-Forwarded-For/-Proto/-Host headers are trusted (0: none).",
        Check(lambda value: value >= 0, "{name} must be 0 or the number of proxies in front."))
    DRAIN_SECONDS: float = setting(
        10.0, "On SIGTERM, how long to wait for clients to receive their close before exiting.")
    LOGIN_LIMIT_ACCOUNT: int = setting(
        5, "Failed logins per account name within the window before its logins are refused "
        "(429).", AT_LEAST_1)
    LOGIN_LIMIT_ADDRESS: int = setting(
        20, "Failed logins per client address within the window before its logins are "
        "refused (429).", AT_LEAST_1)
    LOGIN_WINDOW_SECONDS: float = setting(
        900.0, "The window, in seconds, over which failed logins are counted.",
        SECONDS_ABOVE_0)
    ACCOUNT_CHECK_SECONDS: float = setting(
        5.0, "How often each worker checks that its sessions' accounts are unchanged "
        "(disabled, deleted, password changed: their sessions are closed ``logged_out``).",
        SECONDS_ABOVE_0)


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}
#: Each setting's type, from its annotation.
TYPES: dict[str, Any] = {name: kind for name, kind in typing.get_type_hints(Settings).items()
                         if name in FIELDS}


def _boolean(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


#: How a string (an environment variable, or a string override) is read, by type;
#: strings (``str``, ``str | None``) are taken as they are.
_PARSERS: dict[Any, Callable[[str], Any]] = {
    bool: _boolean, list[str]: _comma_list, int: int, float: float,
}


def parse(key: str, value: Any) -> Any:
    """``value`` of the setting ``key``, read from a string by its type (other values,
    from an override, are kept as they are)."""
    kind = TYPES[key]
    parser = _PARSERS.get(kind)
    if parser is None or not isinstance(value, str):
        return value
    try:
        return parser(value)
    except ValueError:
        raise ConfigError(
            f"{PREFIX}{key}={value!r} is not a valid {kind.__name__}."
        ) from None


def load(environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Settings:
    """Return the ``GATEWAY_*`` settings: defaults, then environment, then overrides.

    An empty environment variable counts as unset. Overrides not starting with
    ``GATEWAY_`` are plain Flask settings, not ours, and are skipped here."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key in FIELDS:
        env_value = environ.get(PREFIX + key)
        if env_value is not None and env_value != "":
            values[key] = parse(key, env_value)
    for name, value in (overrides or {}).items():
        if not name.startswith(PREFIX):
            continue  # a plain Flask setting, not ours
        key = name[len(PREFIX):]
        if key not in FIELDS:
            raise ConfigError(f"Unknown setting {name}; see the table in the README.")
        values[key] = parse(key, value)
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Fail early, saying what is wrong and how to fix it."""
    if settings.ENV != "development" and settings.SECRET_KEY == DEV_SECRET_KEY:
        raise ConfigError(
            "GATEWAY_SECRET_KEY is missing: set it to a long random string "
            "(or set GATEWAY_ENV=development to use the insecure default)."
        )
    for key, field in FIELDS.items():
        check: Check | None = field.metadata["check"]
        if check is not None and not check.ok(getattr(settings, key)):
            raise ConfigError(check.message.format(name=PREFIX + key))


__all__ = ["DEV_SECRET_KEY", "FIELDS", "PREFIX", "TYPES", "Check", "Settings", "load",
           "parse", "setting", "validate"]

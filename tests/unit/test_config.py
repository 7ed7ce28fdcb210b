"""Configuration: defaults, environment, overrides, and early failures."""

from __future__ import annotations

import pathlib
import re
import runpy
from collections.abc import Callable
from typing import Any

import pytest

from gateway import settings as config
from gateway.core.errors import ConfigError
from tests.helpers.support import ROOT

DEV = {"GATEWAY_ENV": "development"}


def test_defaults():
    settings = config.load(environ=DEV)
    assert settings.PORT == 5000 and settings.HOST == "127.0.0.1"
    assert settings.ASYNC_MODE == "eventlet"
    assert settings.ALLOWED_ORIGINS == []
    assert (settings.LOGIN_LIMIT_ACCOUNT, settings.LOGIN_LIMIT_ADDRESS) == (5, 20)
    assert settings.LOGIN_WINDOW_SECONDS == 900 and settings.ACCOUNT_CHECK_SECONDS == 5


def test_environment_then_overrides():
    environ = dict(DEV, GATEWAY_PORT="6000", GATEWAY_ALLOWED_ORIGINS="https://a.example, https://b.example",
                   GATEWAY_CREATE_TABLES="false")
    settings = config.load(environ=environ, overrides={"GATEWAY_PORT": 7000})
    assert settings.PORT == 7000
    assert settings.ALLOWED_ORIGINS == ["https://a.example", "https://b.example"]
    assert settings.CREATE_TABLES is False


def test_refuses_the_default_secret_outside_development():
    with pytest.raises(ConfigError, match="GATEWAY_SECRET_KEY"):
        config.load(environ={})
    assert config.load(environ={"GATEWAY_SECRET_KEY": "s" * 40}).ENV == "production"


@pytest.mark.parametrize("key,value", [
    ("GATEWAY_PORT", "eighty"), ("GATEWAY_ASYNC_MODE", "asyncio"),
    ("GATEWAY_REPLAY_LIMIT", "0"), ("GATEWAY_LOG_FORMAT", "xml"),
    ("GATEWAY_LOGIN_LIMIT_ACCOUNT", "0"), ("GATEWAY_LOGIN_LIMIT_ADDRESS", "0"),
    ("GATEWAY_LOGIN_WINDOW_SECONDS", "0"), ("GATEWAY_ACCOUNT_CHECK_SECONDS", "-1"),
])
def test_invalid_values_fail_early(key, value):
    with pytest.raises(ConfigError, match=key):
        config.load(environ=dict(DEV, **{key: value}))


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="GATEWAY_NOPE"):
        config.load(environ=DEV, overrides={"GATEWAY_NOPE": 1})


README = pathlib.Path(ROOT) / "README.md"

#: Settings whose README default is prose rather than a value: the prose, and what the
#: declared default must then be.
PROSE_DEFAULTS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    # The declared default is the insecure development key, refused in production.
    "SECRET_KEY": ("none", lambda default: default == config.DEV_SECRET_KEY),
    # None: create_app puts SQLite in the instance folder.
    "DATABASE_URL": ("SQLite in `instance/gateway.db`", lambda default: default is None),
    "MESSAGE_QUEUE": ("unset", lambda default: default is None),
    "ALLOWED_ORIGINS": ("same origin only", lambda default: default == []),
    "APPS": ("the four demos", lambda default: len(default) == 4
             and all(name.startswith("gateway.demos.") for name in default)),
}


def readme_table() -> list[tuple[str, str]]:
    """(setting, default cell) of each row of the README's configuration table."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `GATEWAY_")]
    assert rows, "no configuration table in the README"
    table = []
    for row in rows:
        match = re.fullmatch(r"\| `GATEWAY_([A-Z_]+)` \| (.+?) \| .+ \|", row)
        assert match, f"not a row `GATEWAY_X` | default | meaning: {row}"
        table.append((match[1], match[2]))
    return table


def test_the_readme_table_lists_every_setting_once():
    names = [name for name, _ in readme_table()]
    assert sorted(names) == sorted(config.FIELDS), (
        f"missing from the README: {sorted(set(config.FIELDS) - set(names))}; "
        f"not settings: {sorted(set(names) - set(config.FIELDS))}")
    assert len(names) == len(set(names)), "a setting has more than one row"


def test_the_readme_shows_each_declared_default():
    defaults = config.Settings()
    for name, cell in readme_table():
        default = getattr(defaults, name)
        if name in PROSE_DEFAULTS:
            prose, means = PROSE_DEFAULTS[name]
            assert cell == prose and means(default), (
                f"GATEWAY_{name}: README {cell!r}, declared {default!r}")
            continue
        # A value, as GATEWAY_X would be set to it, with an optional note: `2097152` (2 MiB).
        match = re.fullmatch(r"`([^`]*)`(?: \([^)]*\))?", cell)
        assert match, f"GATEWAY_{name}: the README's default {cell!r} is not a `value`"
        assert config.parse(name, match[1]) == default, (
            f"GATEWAY_{name}: README {match[1]!r}, declared {default!r}")


def test_every_setting_has_a_doc_and_a_type():
    for name, field in config.FIELDS.items():
        assert field.metadata["doc"].strip(), f"GATEWAY_{name} has no doc"
        assert name in config.TYPES


def test_gunicorn_conf_sizes_as_the_embedded_server(monkeypatch: pytest.MonkeyPatch):
    """gunicorn.conf.py reads the environment itself (it must not import the gateway
    before the worker patches eventlet): its defaults are those declared."""
    from gateway.transport.eventlet import serving_options

    conf = pathlib.Path(ROOT) / "gunicorn.conf.py"
    for environ in ({}, {"GATEWAY_MAX_SESSIONS": "100", "GATEWAY_MAX_ANONYMOUS": "7",
                         "GATEWAY_BACKLOG": "99"}):
        for name in ("GATEWAY_MAX_SESSIONS", "GATEWAY_MAX_ANONYMOUS", "GATEWAY_BACKLOG"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        gunicorn = runpy.run_path(str(conf))
        options = serving_options(config.load(environ=dict(DEV, **environ)))
        assert (gunicorn["worker_connections"], gunicorn["backlog"]) == (
            options["pool"], options["backlog"])

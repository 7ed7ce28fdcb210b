"""Configuration: defaults, environment, overrides, and early failures."""

from __future__ import annotations

import pytest

from gateway import settings as config
from gateway.core.errors import ConfigError

DEV = {"GATEWAY_ENV": "development"}


def test_defaults():
    settings = config.load(environ=DEV)
    assert settings["PORT"] == 5000 and settings["HOST"] == "127.0.0.1"
    assert settings["ASYNC_MODE"] == "eventlet"
    assert settings["ALLOWED_ORIGINS"] == []
    assert (settings["LOGIN_LIMIT_ACCOUNT"], settings["LOGIN_LIMIT_ADDRESS"]) == (5, 20)
    assert settings["LOGIN_WINDOW_SECONDS"] == 900 and settings["ACCOUNT_CHECK_SECONDS"] == 5


def test_environment_then_overrides():
    environ = dict(DEV, GATEWAY_PORT="6000", GATEWAY_ALLOWED_ORIGINS="https://a.example, https://b.example",
                   GATEWAY_CREATE_TABLES="false")
    settings = config.load(environ=environ, overrides={"GATEWAY_PORT": 7000})
    assert settings["PORT"] == 7000
    assert settings["ALLOWED_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert settings["CREATE_TABLES"] is False


def test_refuses_the_default_secret_outside_development():
    with pytest.raises(ConfigError, match="GATEWAY_SECRET_KEY"):
        config.load(environ={})
    assert config.load(environ={"GATEWAY_SECRET_KEY": "s" * 40})["ENV"] == "production"


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

"""Failed-login limits per account name and per client address (auth/limits.py)."""

from __future__ import annotations

import pytest

import auth
from auth.limits import LoginFailure
from auth.limits import LoginLimiter
from gateway import create_app
from gateway import hub_for
from tests.helpers.testapp import PASSWORD

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5


@pytest.fixture
def app_config(app_config):
    return dict(app_config, GATEWAY_LOGIN_LIMIT_ACCOUNT=str(ACCOUNT_LIMIT),
                GATEWAY_LOGIN_LIMIT_ADDRESS=str(ADDRESS_LIMIT))


def attempt(app, name, password, address="198.51.100.1"):
    return app.test_client().post("/login", data={"name": name, "password": password},
                                  environ_base={"REMOTE_ADDR": address})


def fail(app, name, times, address="198.51.100.1"):
    for _ in range(times):
        assert attempt(app, name, "wrong password", address).status_code == 401


def test_an_account_is_refused_after_its_limit_even_with_the_right_password(app):
    fail(app, "alice", ACCOUNT_LIMIT)
    refused = attempt(app, "alice", PASSWORD)
    assert refused.status_code == 429
    assert 850 <= int(refused.headers["Retry-After"]) <= 900
    text = refused.get_data(as_text=True)
    assert "Too many failed logins" in text and "Try again in 15 minutes." in text
    assert "Set-Cookie" not in refused.headers  # not logged in
    # Other accounts, from another address, are not affected.
    assert attempt(app, "bob", PASSWORD, address="198.51.100.2").status_code == 302


def test_the_limit_is_checked_before_the_password(app, monkeypatch):
    fail(app, "alice", ACCOUNT_LIMIT)

    def must_not_run(*args):
        raise AssertionError("the password was checked")

    monkeypatch.setattr(auth.User, "check_password", must_not_run)
    monkeypatch.setattr("auth.views.verify_dummy", must_not_run)
    assert attempt(app, "alice", PASSWORD).status_code == 429
    assert attempt(app, "alice", "anything").status_code == 429


def test_an_unknown_account_is_limited_the_same_way(app):
    fail(app, "alice", ACCOUNT_LIMIT, address="198.51.100.1")
    fail(app, "zed", ACCOUNT_LIMIT, address="198.51.100.2")
    known = attempt(app, "alice", "x", address="198.51.100.3")
    unknown = attempt(app, "zed", "x", address="198.51.100.4")
    assert known.status_code == unknown.status_code == 429
    message = "Too many failed logins for this name or from this address."
    assert message in known.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_an_address_is_refused_after_its_limit_across_accounts(app):
    for i in range(ADDRESS_LIMIT):
        fail(app, f"guess{i}", 1, address="203.0.113.7")
    assert attempt(app, "bob", PASSWORD, address="203.0.113.7").status_code == 429
    assert attempt(app, "bob", PASSWORD, address="203.0.113.8").status_code == 302


def test_a_successful_login_clears_the_account_count(app):
    fail(app, "alice", ACCOUNT_LIMIT - 1)
    assert attempt(app, "alice", PASSWORD).status_code == 302
    fail(app, "alice", ACCOUNT_LIMIT - 1)
    assert attempt(app, "alice", PASSWORD).status_code == 302  # 4 failures, none pending


def test_failures_leave_the_window(app):
    limiter = LoginLimiter(account_limit=3, address_limit=100, window=900)
    with app.app_context():
        for at in (1000.0, 1010.0, 1020.0):
            limiter.failed("alice", "192.0.2.1", now=at)
        assert limiter.retry_after("alice", "192.0.2.9", now=1030.0) == 870
        assert limiter.retry_after("bob", "192.0.2.9", now=1030.0) is None
        assert limiter.retry_after("alice", "192.0.2.9", now=1900.5) is None  # first one left
        limiter.failed("bob", "192.0.2.1", now=2000.0)
        # Recording a failure forgets those out of the window.
        assert auth.db.session.execute(
            auth.db.select(auth.db.func.count()).select_from(LoginFailure)).scalar() == 2


def test_workers_sharing_a_database_agree(app, app_config):
    other = create_app(app_config)  # a second worker on the same database
    try:
        fail(other, "alice", ACCOUNT_LIMIT)
        assert attempt(app, "alice", PASSWORD).status_code == 429
    finally:
        hub_for(other).shutdown()


def test_account_names_are_not_stored_in_clear(app):
    fail(app, "my secret password", 1)
    with app.app_context():
        keys = auth.db.session.execute(auth.db.select(LoginFailure.key)).scalars().all()
    assert not any("secret" in key for key in keys)

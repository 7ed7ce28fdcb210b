"""Login (CSRF, safe next), logout, and the users CLI."""

from __future__ import annotations

import re

import pytest

import auth
from auth.views import safe_next
from gateway import create_app
from gateway import hub_for
from tests.helpers.testapp import PASSWORD


@pytest.fixture
def csrf_app(app_config):
    """The app with CSRF protection on, as in production."""
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    with app.app_context():
        user = auth.User(name="carol")
        user.set_password(PASSWORD)
        auth.db.session.add(user)
        auth.db.session.commit()
    yield app
    hub_for(app).shutdown()


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_login_requires_the_csrf_token(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/login", data={"name": "carol", "password": PASSWORD})
    assert response.status_code == 401
    assert b"form expired" in response.data
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": "carol", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302


def test_logout_requires_post_with_csrf(csrf_app):
    client = csrf_app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"name": "carol", "password": PASSWORD, "csrf_token": token})
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token: refused
    page = client.get("/").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/").status_code == 302  # logged out: sent to the login page


def copy_of(app, client):
    """Another browser carrying a copy of ``client``'s login cookie."""
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def test_a_copy_of_the_cookie_is_worthless_after_logout(app, connect, refused):
    from tests.helpers.testapp import login_client

    client = login_client(app, "alice")
    copy = copy_of(app, client)
    other_device = login_client(app, "alice")  # alice logged in elsewhere too
    assert copy.get("/").status_code == 200
    bob_sio, _ = connect("echo", user="bob")
    assert client.post("/logout").status_code == 302
    # The copy taken before logout opens neither pages nor sockets (before: both).
    page = copy.get("/app/echo")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert copy.get("/api/v1/stream").status_code == 401
    assert refused({"app": "echo"}, flask_client=copy)["data"]["code"] == "unauthorized"
    # Logout is everywhere: alice's other logins end too, as her live sessions do.
    assert other_device.get("/").status_code == 302
    # Nobody else is logged out; alice logs in again as usual.
    assert bob_sio.is_connected()
    assert login_client(app, "alice").get("/").status_code == 200


def test_wrong_password_and_unknown_user_look_the_same(app):
    client = app.test_client()
    wrong = client.post("/login", data={"name": "alice", "password": "nope-nope"})
    unknown = client.post("/login", data={"name": "zed", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert b"Wrong name or password" in wrong.data and b"Wrong name or password" in unknown.data


def test_disabled_user_cannot_log_in(app):
    with app.app_context():
        user = auth.User.by_name("bob")
        user.disabled = True
        auth.db.session.commit()
    response = app.test_client().post("/login", data={"name": "bob", "password": PASSWORD})
    assert response.status_code == 401


@pytest.mark.parametrize("target,expected", [
    ("/app/hello", "/app/hello"), ("/?x=1", "/?x=1"),
    ("https://evil.example/", None), ("//evil.example/", None), ("/\\evil.example", None),
    ("javascript:alert(1)", None), ("", None), (None, None), ("/\x00x", None),
])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


def test_login_follows_only_a_safe_next(app):
    client = app.test_client()
    ok = client.post("/login?next=/app/echo", data={"name": "alice", "password": PASSWORD,
                                                     "next": "/app/echo"})
    assert ok.headers["Location"] == "/app/echo"
    client = app.test_client()
    evil = client.post("/login", data={"name": "alice", "password": PASSWORD,
                                       "next": "https://evil.example/"})
    assert evil.headers["Location"] == "/"


def test_pages_need_a_login(app, client):
    assert app.test_client().get("/app/hello").status_code == 302
    assert client.get("/app/hello").status_code == 200
    assert client.get("/app/no-such-app").status_code == 404


def test_users_cli_creates_and_deletes(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "dave", "--password-stdin", "--admin"],
                           input="a long password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        dave = auth.User.by_name("dave")
        assert dave.is_admin and dave.check_password("a long password")
        assert dave.password_hash.startswith("$argon2")
    again = runner.invoke(args=["users", "create", "dave", "--password-stdin"], input="x" * 10)
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["users", "create", "erin", "--password-stdin"], input="short\n")
    assert short.exit_code != 0
    assert runner.invoke(args=["users", "delete", "dave"]).exit_code == 0
    assert runner.invoke(args=["users", "delete", "dave"]).exit_code != 0
    with app.app_context():
        assert auth.User.by_name("dave") is None


def test_demo_user_is_created_once(app_config, tmp_path):
    app = create_app(dict(app_config, GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}"))
    with app.app_context():
        password = auth.create_demo_user()
        assert password and auth.User.by_name("demo").check_password(password)
        assert auth.create_demo_user() is None
    hub_for(app).shutdown()


def login_cookie(app, base_url: str, headers: dict | None = None) -> str:
    client = app.test_client()
    response = client.post("/login", base_url=base_url, headers=headers or {},
                           data={"name": "alice", "password": PASSWORD})
    assert response.status_code == 302
    (cookie,) = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    return cookie


def test_login_cookie_is_httponly_samesite_and_secure_over_https(app):
    plain = login_cookie(app, "http://gw.test")
    secure = login_cookie(app, "https://gw.test")
    for cookie in (plain, secure):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in plain and "Secure" in secure


def test_forwarded_https_is_trusted_only_behind_a_configured_proxy(app_config, tmp_path):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for hops, expect_secure in ((0, False), (1, True)):
        app = create_app(dict(app_config, GATEWAY_PROXY_FIX=hops,
                              GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / f'hops{hops}.db'}"))
        with app.app_context():
            user = auth.User(name="alice")
            user.set_password(PASSWORD)
            auth.db.session.add(user)
            auth.db.session.commit()
        cookie = login_cookie(app, "http://gw.test", forwarded)
        assert ("Secure" in cookie) is expect_secure
        hub_for(app).shutdown()

"""Flask-Login integration: users, login and logout, and the ``users`` CLI."""

from __future__ import annotations

import secrets

from flask import Flask
from flask import has_request_context
from flask import request
from flask import session as flask_session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from .models import User
from .models import db
from .models import upgrade_schema
from .signals import logged_out

__all__ = ["User", "create_demo_user", "db", "init_app", "logged_out", "login_from_cookie",
           "login_manager"]

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
csrf = CSRFProtect()


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    # The cookie holds "ID:EPOCH" (User.get_id): a login ends when the account is
    # deleted or disabled or its password changes (the epoch moves on).
    return User.from_login_id(login_id)


def login_from_cookie() -> tuple[int, str, bool, int] | None:
    """``(id, name, is_admin, auth_epoch)`` of the user the request's login cookie names,
    checked as :func:`load_user` checks it (active, same epoch), or None.

    Reads Flask-Login's key in the session cookie ("ID:EPOCH") with one plain SELECT
    instead of loading a :class:`User`: the Socket.IO connect path, which runs for every
    connection, needs no more.
    """
    login_id = flask_session.get("_user_id")  # Flask-Login's key: read here, in auth only
    return User.login_row(str(login_id)) if login_id else None


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure when served over HTTPS (GATEWAY_COOKIE_SECURE)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        setting = app.config["GATEWAY"].COOKIE_SECURE
        if setting == "auto":
            return has_request_context() and request.is_secure
        return bool(setting == "true")


def init_app(app: Flask) -> None:
    """Bind the database, Flask-Login and CSRF protection; add the views and CLI."""
    from . import cli
    from . import limits  # noqa: F401  (its table is created with the others)
    from . import tokens
    from . import views

    db.init_app(app)
    if app.config["GATEWAY"].CREATE_TABLES:
        with app.app_context():
            upgrade_schema()
    app.session_interface = SessionInterface()
    login_manager.init_app(app)
    csrf.init_app(app)
    # The login form checks its own CSRF token, so a stale form gets the form back
    # with a message instead of a bare 400 page.
    csrf.exempt(views.login)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(tokens.bp)


def create_demo_user() -> str | None:
    """Create the ``demo`` user when there are no users; return its new password."""
    if db.session.execute(db.select(User.id).limit(1)).first() is not None:
        return None
    password = secrets.token_urlsafe(12)
    user = User(name="demo")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return password

"""Login and logout views."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from werkzeug.wrappers import Response

from .forms import LoginForm
from .limits import LoginLimiter
from .limits import wait_text
from .models import User
from .models import db
from .models import verify_dummy
from .signals import logged_out

bp = Blueprint("auth", __name__)
logger = logging.getLogger("auth")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("pages.index"))
    error = None
    if form.validate_on_submit():
        limiter = LoginLimiter.from_settings(current_app.config["GATEWAY"])
        address = request.remote_addr or ""
        wait = limiter.retry_after(form.name.data, address)
        if wait is not None:
            # Refused before the password is checked; the same answer whether or not
            # the account exists.
            logger.warning("login refused for %r from %s: too many failed logins",
                           form.name.data[:64], address)
            error = ("Too many failed logins for this name or from this address. "
                     f"Try again in {wait_text(wait)}.")
            response = make_response(render_template("login.html", form=form, error=error), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        user = User.by_name(form.name.data)
        if user is None:
            verify_dummy(form.password.data)
        if user is not None and user.check_password(form.password.data) and user.is_active:
            limiter.succeeded(user.name)
            login_user(user)
            logger.info("user %s logged in from %s", user.name, address)
            return redirect(safe_next(form.next.data) or url_for("pages.index"))
        limiter.failed(form.name.data, address)
        logger.info("failed login for %r from %s", form.name.data[:64], address)
        error = "Wrong name or password."
    elif request.method == "POST":
        error = "The form expired or was incomplete; please try again."
    status = 401 if error else 200
    return render_template("login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Log out everywhere: the account's login epoch moves on, so every login cookie of
    this account (this one, a copy of it, those of its other browsers and devices) is
    refused from its next request, and every live session of the account, on every
    worker, is closed. That matches what logout already did to live sessions; a cookie
    that stayed valid after logout would let anyone who copied it carry on."""
    user = current_user._get_current_object()
    user_id, name = user.id, user.name
    user.end_logins()
    db.session.commit()
    logout_user()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    closed = sum(result or 0 for _receiver, result in
                 logged_out.send(app, user_id=user_id, name=name))
    logger.info("user %s logged out; %d live session(s) closed", name, closed)
    return redirect(url_for("auth.login"))

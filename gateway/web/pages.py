"""HTTP pages (index, app pages) and health endpoints."""

from __future__ import annotations

import logging
import os

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import jsonify
from flask import render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_login import login_required
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest
from sqlalchemy import text

from auth.models import db

from .extension import gateway
from .extension import hub_for

bp = Blueprint("pages", __name__)
logger = logging.getLogger("gateway")


@bp.route("/")
@login_required
def index() -> ResponseReturnValue:
    apps = [spec.describe() for spec in gateway.catalog]
    return render_template("index.html", apps=apps)


@bp.route("/app/<name>")
@login_required
def app_page(name: str) -> ResponseReturnValue:
    spec = gateway.catalog.get(name)
    if spec is None:
        abort(404)
    if name == "admin" and not current_user.is_admin:
        abort(403)  # the app would close such a session anyway; say so up front
    script = f"demos/{name}.js"
    static = current_app.static_folder or ""
    demo_script = script if os.path.isfile(os.path.join(static, script)) else None
    return render_template("app.html", app_name=name, app_title=spec.describe()["title"],
                           demo_script=demo_script)


@bp.route("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive and serving."""
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz() -> ResponseReturnValue:
    """The database (and, when configured, the bus) can be reached."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        logger.warning("readiness: database unreachable: %s", exc.__class__.__name__)
        checks["database"] = "unreachable"
    hub = hub_for()
    checks["bus"] = "ok" if hub.bus.healthy else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503


@bp.route("/metrics")
def metrics() -> ResponseReturnValue:
    """This worker's metrics in the Prometheus text format."""
    hub = hub_for()
    return Response(generate_latest(hub.metrics.registry), content_type=CONTENT_TYPE_LATEST)

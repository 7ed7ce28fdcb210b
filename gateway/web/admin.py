"""Administration, for users with the admin flag: the sessions API and the ``admin`` app.

- ``GET /api/v1/sessions``: the live sessions (:func:`session_rows`).
- ``POST /api/v1/sessions/<id>/kick``: close one with ``kicked`` (CSRF token in the
  ``X-CSRFToken`` header or a ``csrf_token`` form field, as every POST of the app).
- The ``admin`` session app, built on the gateway itself: a table of the sessions,
  refreshed when it changes, and a ``kick`` event. A non-admin who connects to it is
  closed at once with ``kicked``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from ..core.errors import BAD_REQUEST
from ..core.errors import FORBIDDEN
from ..core.errors import KICKED
from ..core.errors import UNAUTHORIZED
from ..core.errors import UNKNOWN_EVENT
from ..core.errors import UNKNOWN_SESSION
from ..core.errors import GatewayError
from ..core.protocol import SESSION_ID
from .extension import gateway
from .extension import hub_for
from .responses import error_response

if TYPE_CHECKING:
    from ..cluster.hub import Hub
    from ..core.session import Session

bp = Blueprint("admin", __name__, url_prefix="/api/v1")
logger = logging.getLogger("gateway.admin")

#: How often an ``admin`` session looks for changes to send (Flask setting
#: ``ADMIN_REFRESH_SECONDS`` overrides it, for tests).
REFRESH_SECONDS = 1.0
#: The table's scope in the page: each refresh replaces it.
TABLE_SCOPE = "sessions"



def session_rows(hub: Hub) -> list[dict[str, Any]]:
    """Every live session of the cluster (of this worker, alone), oldest first.

    The one place that gathers sessions for the admin views (the API, the ``admin``
    app and the kick check all use it). With a bus, each worker answers for its own
    sessions; a worker that does not answer within a second is left out (and logged).
    """
    rows = hub.gather("sessions")
    rows.sort(key=lambda row: (row["created_at"] or 0.0, row["id"]))
    return rows


def local_session_rows(hub: Hub) -> list[dict[str, Any]]:
    """This worker's live sessions, as :func:`session_rows` lists them."""
    rows = []
    for session in hub.registry.all():
        info = session.info
        state = session.lifecycle.value
        rows.append({
            "id": session.id,
            "user": session.user.to_dict(),
            "app": session.app,
            "state": state,
            "created_at": info.get("created_at"),
            "attached_at": info.get("attached_at"),
            "detached_at": info.get("detached_at") if state == "detached" else None,
            "resumes": info.get("resumes", 0),
            "remote_addr": info.get("remote_addr"),
            "user_agent": info.get("user_agent"),
            "topics": sorted(session.topics),
            "last_seq": session.last_seq,
            "unacked": session.unacked,
            "worker": hub.worker_id,
        })
    return rows


def init_hub(hub: Hub) -> None:
    """Let other workers ask this one for its sessions."""
    hub.router.gatherers["sessions"] = lambda: local_session_rows(hub)


# -- the HTTP API -----------------------------------------------------------


def admin_only(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """401 when not logged in, 403 unless the user has the admin flag (JSON errors)."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not current_user.is_authenticated:
            return error_response(401, UNAUTHORIZED, "Log in as an administrator first.")
        if not current_user.is_admin:
            return error_response(403, FORBIDDEN, "Only administrators may do this.")
        return view(*args, **kwargs)
    return wrapped


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    return error_response(400, BAD_REQUEST, "Missing or invalid CSRF token: send the page's "
                                            "token in the X-CSRFToken header.")


@bp.get("/sessions")
@admin_only
def list_sessions() -> ResponseReturnValue:
    return jsonify(sessions=session_rows(hub_for()))


@bp.post("/sessions/<session_id>/kick")
@admin_only
def kick_session(session_id: str) -> ResponseReturnValue:
    if not kick(hub_for(), session_id, by=current_user.name):
        return error_response(404, UNKNOWN_SESSION, f"There is no live session {session_id!r}.")
    return jsonify(kicked=True), 202


def kick(hub: Hub, session_id: str, by: str) -> bool:
    """Close the session ``session_id`` with ``kicked``; False if it is not live."""
    if not SESSION_ID.fullmatch(session_id) or \
            session_id not in {row["id"] for row in session_rows(hub)}:
        return False
    hub.kick(session_id, "An administrator ended the session.")
    logger.info("session %s kicked by %s", session_id, by)
    return True


# -- the admin session app --------------------------------------------------


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp)) if timestamp else ""


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns the ``admin`` app shows (times in words, no counters that tick)."""
    return [{
        "session": row["id"],
        "user": row["user"]["name"],
        "app": row["app"],
        "state": row["state"],
        "since": _when(row["created_at"]),
        "address": row["remote_addr"] or "",
        "topics": ", ".join(row["topics"]),
        "worker": row["worker"],
    } for row in rows]


@gateway.app("admin", keep_open=True, title="Admin",
             description="The live sessions, with a button to end any of them (admins only).")
def admin_app(session: Session) -> None:
    if not session.user.is_admin:
        logger.warning("user %s opened the admin app without the admin flag",
                       session.user.name)
        session.close(KICKED, "The admin app is for administrators only.")
        return
    refresh = float(current_app.config.get("ADMIN_REFRESH_SECONDS", REFRESH_SECONDS))
    shown: list[dict[str, Any]] | None = None
    while True:  # ends with SessionClosed from sleep or send
        rows = table_rows(session_rows(gateway.hub))
        if rows != shown:
            session.send("clear", scope=TABLE_SCOPE)
            session.send("output", kind="table", content=rows, scope=TABLE_SCOPE)
            shown = rows
        session.sleep(refresh)


@gateway.on("kick", app="admin")
def kick_event(session: Session, data: Any) -> dict[str, Any]:
    if not session.user.is_admin:  # it may arrive before the app closes the session
        raise GatewayError("The admin app has no events for you.", code=UNKNOWN_EVENT)
    target = data.get("session") if isinstance(data, dict) else None
    if not isinstance(target, str):
        raise GatewayError('kick needs {"session": ID}.', code=BAD_REQUEST)
    if not kick(gateway.hub, target, by=session.user.name):
        raise GatewayError(f"There is no live session {target!r}.", code=BAD_REQUEST)
    return {"kicked": True}

"""The HTTP API: push (producers outside the server), presence, and the SSE stream.

- ``POST /api/v1/push`` with ``Authorization: Bearer TOKEN`` (``flask tokens create``):
  body ``{"to": {...}, "name": STR, "args": OBJ}``; ``202 {"accepted": true}``, or the
  error shape with 400 (bad body), 401 (no or bad token), 403 (a login cookie is not a
  token), 413 (too large), 503 (the message queue is down: nothing was sent).
- ``GET /api/v1/presence[?topic=NAME]``: who is online (or in ``topic``) across the
  cluster; for a token or an admin's login.
- ``GET /api/v1/stream``: the logged-in user's commands as server-sent events.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask import stream_with_context
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from auth.tokens import ApiToken

from .bus import Target
from .errors import BAD_REQUEST
from .errors import TOO_LARGE
from .errors import TOO_MANY_SESSIONS
from .errors import UNAUTHORIZED
from .errors import BusUnavailable
from .errors import GatewayError
from .errors import error_payload
from .hub import Hub

bp = Blueprint("api", __name__, url_prefix="/api/v1")
logger = logging.getLogger("gateway")

FORBIDDEN = "forbidden"
#: Seconds between SSE keep-alive comments (proxies close idle responses).
KEEPALIVE_SECONDS = 15.0
#: SSE event names are sent as they are only when they are this simple.
SAFE_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _hub() -> Hub:
    return current_app.extensions["gateway"]  # type: ignore[no-any-return]


def _error(status: int, code: str, message: str) -> ResponseReturnValue:
    response = jsonify(error=error_payload(code, message))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
    return response


def _bearer_token() -> ApiToken | None | bool:
    """The API token of the request; None when absent, False when invalid."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return ApiToken.verify(token.strip()) or False


def _require_token(allow_admin: bool = False) -> ResponseReturnValue | None:
    """None when the request may go on, else the error response."""
    token = _bearer_token()
    if token:
        return None
    if token is False:
        return _error(401, UNAUTHORIZED, "The API token is missing, malformed or revoked.")
    if current_user.is_authenticated:
        if allow_admin and current_user.is_admin:
            return None
        return _error(403, FORBIDDEN, "This endpoint needs an API token "
                      "(flask --app wsgi tokens create NAME).")
    return _error(401, UNAUTHORIZED, "Send an API token: Authorization: Bearer TOKEN.")


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def api_not_found(exc: HTTPException) -> ResponseReturnValue:
    """Under /api/ every answer has the JSON error shape, unknown routes included."""
    if not request.path.startswith("/api/"):
        return exc
    code = "not_found" if exc.code == 404 else "method_not_allowed"
    return _error(exc.code or 404, code, exc.description or code)


def parse_push(body: Any) -> tuple[Target, str, dict[str, Any]]:
    """Validate a push body; raise GatewayError(bad_request) saying what is wrong."""
    if not isinstance(body, dict):
        raise GatewayError('The body must be a JSON object {"to", "name", "args"}.',
                           code=BAD_REQUEST)
    unknown = set(body) - {"to", "name", "args"}
    if unknown:
        raise GatewayError(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}.",
                           code=BAD_REQUEST)
    target = Target.from_dict(body.get("to"))
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise GatewayError('"name" must be a string of 1 to 128 characters.', code=BAD_REQUEST)
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise GatewayError('"args" must be an object.', code=BAD_REQUEST)
    return target, name, args


@bp.route("/push", methods=["POST"])
def push() -> ResponseReturnValue:
    denied = _require_token()
    if denied is not None:
        return denied
    try:
        body = request.get_json(force=True, silent=False)
        target, name, args = parse_push(body)
    except RequestEntityTooLarge:
        return _error(413, TOO_LARGE, "The body is larger than the server accepts (1 MB).")
    except BadRequest:
        return _error(400, BAD_REQUEST, "The body is not valid JSON.")
    except GatewayError as exc:
        return _error(400, exc.code, str(exc))
    try:
        _hub().send(target, name, args)
    except BusUnavailable as exc:
        logger.error("push refused: %s", exc)
        return _error(503, exc.code, str(exc))
    return jsonify(accepted=True), 202


@bp.route("/presence")
def presence() -> ResponseReturnValue:
    denied = _require_token(allow_admin=True)
    if denied is not None:
        return denied
    hub = _hub()
    topic = request.args.get("topic")
    users = hub.presence.members(topic) if topic else hub.presence.online()
    return jsonify(topic=topic, users=users, worker=hub.worker_id,
                   workers=hub.presence.workers())


def _sse(event: str | None, data: Any, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


@bp.route("/stream")
def stream() -> ResponseReturnValue:
    """The logged-in user's commands (sent to them, or to everyone) as server-sent events.

    Each command is an event named after it (``event: toast``; a name that is not
    plain letters, digits and ``_.:-`` comes as ``event: command`` with
    ``{"name", "args"}``), its ``id:`` the command's number in this user's stream and
    its data the args as JSON. ``Last-Event-ID`` (or ``?last_event_id=``) resumes.
    Special events: ``reset`` ``{"reason"}`` when commands were missed (``unknown``:
    this worker has no such stream, e.g. after a restart; ``replay_overflow``) and
    ``close`` ``{"reason"}`` at the end (``logged_out``, ``server_shutdown``).
    """
    if not current_user.is_authenticated:
        return _error(401, UNAUTHORIZED, "Log in before opening a stream.")
    hub = _hub()
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    last = int(raw) if raw.isdigit() and len(raw) < 19 else 0
    user_id, name = str(current_user.id), current_user.name
    limit = hub.settings["MAX_SESSIONS_PER_USER"]
    user_stream = hub.streams.open(user_id, name, current_user.auth_epoch or 0)
    if user_stream.readers > limit:
        user_stream.detach()
        return _error(429, TOO_MANY_SESSIONS, f"At most {limit} streams per user.")

    def generate() -> Iterator[str]:
        after = last
        try:
            yield "retry: 2000\n\n"
            if after > user_stream.seq:
                yield _sse("reset", {"reason": "unknown"})
                after = 0
            while True:
                batch = user_stream.read(after, KEEPALIVE_SECONDS)
                if batch.closed:
                    yield _sse("close", {"reason": batch.closed})
                    return
                if batch.missed:
                    yield _sse("reset", {"reason": "replay_overflow"})
                if not batch.commands:
                    yield ": keep-alive\n\n"
                    continue
                out = []
                for seq, command, args in batch.commands:
                    if SAFE_EVENT_NAME.match(command):
                        out.append(_sse(command, args, seq))
                    else:
                        out.append(_sse("command", {"name": command, "args": args}, seq))
                    after = seq
                yield "".join(out)
        finally:
            user_stream.detach()

    logger.info("stream opened for user %s (after %d)", name, last)
    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response

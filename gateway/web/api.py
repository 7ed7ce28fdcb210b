"""The HTTP API: push (producers outside the server), presence, and the SSE stream.

- ``POST /api/v1/push`` with ``Authorization: Bearer TOKEN`` (``flask tokens create``):
  body ``{"to": {...}, "name": STR, "args": OBJ}``; ``202 {"accepted": true}``, or the
  error shape with 400 (bad body), 401 (no or bad token), 403 (a login cookie is not a
  token), 413 (too large), 503 (the message queue is down: nothing was sent). The body
  is strict JSON (:mod:`gateway.core.jsonsafe`): ``Content-Type: application/json``, UTF-8,
  no ``NaN``/``Infinity``, nested at most :data:`PUSH_MAX_DEPTH` deep.
- ``GET /api/v1/presence[?topic=NAME]``: who is online (or in ``topic``) across the
  cluster; for a token or an admin's login.
- ``GET /api/v1/stream``: the logged-in user's commands as server-sent events.

Under ``/api/`` every error, whatever raised it, answers the JSON error shape
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
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
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import RequestEntityTooLarge

from auth.tokens import ApiToken

from ..core.errors import BAD_REQUEST
from ..core.errors import FORBIDDEN
from ..core.errors import INTERNAL_ERROR
from ..core.errors import METHOD_NOT_ALLOWED
from ..core.errors import NOT_FOUND
from ..core.errors import REPLAY_OVERFLOW
from ..core.errors import TOO_LARGE
from ..core.errors import TOO_MANY_SESSIONS
from ..core.errors import UNAUTHORIZED
from ..core.errors import UNKNOWN
from ..core.errors import BusUnavailable
from ..core.errors import GatewayError
from ..core.jsonsafe import JsonRejected
from ..core.jsonsafe import loads_strict
from ..core.targets import Target
from .extension import hub_for
from .responses import error_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")
logger = logging.getLogger("gateway")

#: The SSE keep-alive interval, in seconds: an idle stream gets a comment every half of
#: it (proxies close idle responses), so a reader whose client went away is noticed
#: (a write fails) and its slot freed within it. The Flask setting
#: ``SSE_KEEPALIVE_SECONDS`` overrides it (tests).
KEEPALIVE_SECONDS = 15.0
#: SSE event names are sent as they are only when they are this simple (``fullmatch``:
#: a ``$`` would let a trailing newline through, and with it a forged SSE field).
SAFE_EVENT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: A ``Last-Event-ID`` is ``LIFE-N``: the stream's life (8 lowercase hex digits) and a
#: number of at most 18 ASCII digits (``str.isdigit`` also takes ``²`` and other digits
#: ``int`` refuses). A bare number has no life: it is from no stream of this worker's.
#: Anything else counts as no id at all.
EVENT_ID = re.compile(r"(?:([0-9a-f]{8})-)?([0-9]{1,18})")
#: Deepest nesting of a push body: ``{"args": {...}}`` is 2 deep.
PUSH_MAX_DEPTH = 32
#: Where the SSE stream is served (see :func:`unbuffered_stream`).
STREAM_PATH = "/api/v1/stream"



def _error(status: int, code: str, message: str) -> ResponseReturnValue:
    """An API error; a 401 says how to authenticate (a bearer token)."""
    return error_response(status, code, message,
                          challenge='Bearer realm="gateway"' if status == 401 else None)


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
    code = NOT_FOUND if exc.code == 404 else METHOD_NOT_ALLOWED
    return _error(exc.code or 404, code, exc.description or code)


@bp.app_errorhandler(HTTPException)
def api_http_error(exc: HTTPException) -> ResponseReturnValue:
    """Any other HTTP error under /api/ (a malformed request Werkzeug refused, a missing
    CSRF token, a body over the size limit) in the JSON error shape too."""
    if not request.path.startswith("/api/"):
        return exc
    status = exc.code or 400
    code = {400: BAD_REQUEST, 413: TOO_LARGE}.get(status) \
        or (exc.name or "error").lower().replace(" ", "_")
    return _error(status, code, exc.description or code)


@bp.app_errorhandler(InternalServerError)
def api_internal_error(exc: InternalServerError) -> ResponseReturnValue:
    """A bug under /api/ answers the JSON error shape, never an HTML page."""
    if not request.path.startswith("/api/"):
        return exc
    return _error(500, INTERNAL_ERROR, "The server failed to handle this request.")


def json_body(max_depth: int) -> Any:
    """The request body as strict JSON (:func:`~gateway.core.jsonsafe.loads_strict`).

    Raises :class:`~gateway.core.jsonsafe.JsonRejected` (400) for a Content-Type other than
    ``application/json`` (a charset other than UTF-8 included), invalid UTF-8, invalid
    JSON, ``NaN``/``Infinity``, or nesting deeper than ``max_depth``; and
    ``RequestEntityTooLarge`` (413) past ``MAX_CONTENT_LENGTH``.
    """
    if request.mimetype != "application/json":
        raise JsonRejected('Send the body as JSON, with "Content-Type: application/json".')
    if request.mimetype_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise JsonRejected("The body must be UTF-8 JSON.")
    return loads_strict(request.get_data(cache=False), max_depth)


def unbuffered_stream(wsgi_app: Any) -> Any:
    """WSGI middleware: eventlet writes the SSE stream's chunks to the socket at once.

    eventlet's WSGI server holds a response's writes back until 8 KB are buffered
    (``minimum_chunk_size``) unless the request's environ says otherwise: each event
    would wait for the next 8 KB, and a keep-alive would never reach the socket, so a
    reader whose client went away would never be noticed. Other servers ignore the key.
    It is set here, in a middleware outside Flask-SocketIO's, because that one hands the
    Flask app a copy of the environ: a key set in the view never reaches eventlet.
    """
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == STREAM_PATH:
            environ["eventlet.minimum_write_chunk_size"] = 0
        return wsgi_app(environ, start_response)

    return app


def parse_last_event_id(raw: str | None) -> tuple[str | None, int] | None:
    """``(life, number)`` of an SSE ``Last-Event-ID`` (life None for a bare number), or
    None when absent or malformed."""
    found = EVENT_ID.fullmatch(raw) if raw else None
    return (found.group(1), int(found.group(2))) if found else None


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
        body = json_body(PUSH_MAX_DEPTH)
        target, name, args = parse_push(body)
    except RequestEntityTooLarge:
        return _error(413, TOO_LARGE, "The body is larger than the server accepts (1 MB).")
    except BadRequest:
        return _error(400, BAD_REQUEST, "The body could not be read.")
    except GatewayError as exc:  # JsonRejected included
        return _error(400, exc.code, str(exc))
    try:
        hub_for().send(target, name, args)
    except BusUnavailable as exc:
        logger.error("push refused: %s", exc)
        return _error(503, exc.code, str(exc))
    except ValueError as exc:  # args the hub will not send (strict parsing leaves none)
        return _error(400, BAD_REQUEST, str(exc))
    return jsonify(accepted=True), 202


@bp.route("/presence")
def presence() -> ResponseReturnValue:
    denied = _require_token(allow_admin=True)
    if denied is not None:
        return denied
    hub = hub_for()
    topic = request.args.get("topic")
    users = hub.presence.members(topic) if topic else hub.presence.online()
    return jsonify(topic=topic, users=users, worker=hub.worker_id,
                   workers=hub.presence.workers())


def _sse(event: str | None, data: Any, event_id: str | None = None) -> str:
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
    its data the args as JSON. The ``id:`` is ``LIFE-N`` (see :mod:`gateway.core.streams`).
    ``Last-Event-ID`` (or ``?last_event_id=``) resumes; one of another life of the stream
    (or a bare number) is answered ``reset`` ``unknown`` and the stream starts over; a
    malformed one counts as none. An idle stream gets a keep-alive
    comment every ``KEEPALIVE_SECONDS / 2``; a reader whose client went away is found
    by a failed write and its slot freed within ``KEEPALIVE_SECONDS``. Special events:
    ``reset`` ``{"reason"}`` when commands were missed (``unknown``: this worker has no
    such stream, e.g. after a restart; ``replay_overflow``) and
    ``close`` ``{"reason"}`` at the end (``logged_out``, ``server_shutdown``).
    """
    if not current_user.is_authenticated:
        return _error(401, UNAUTHORIZED, "Log in before opening a stream.")
    hub = hub_for()
    # A malformed id (not 1 to 18 ASCII digits) counts as none: a 400 would make an
    # EventSource give up for good, and the id is only a hint of where to resume.
    last = parse_last_event_id(request.headers.get("Last-Event-ID")
                               or request.args.get("last_event_id"))
    keepalive = max(0.1, float(current_app.config.get("SSE_KEEPALIVE_SECONDS",
                                                      KEEPALIVE_SECONDS)))
    user_id, name = str(current_user.id), current_user.name
    limit = hub.settings.MAX_SESSIONS_PER_USER
    user_stream = hub.streams.open(user_id, name, current_user.auth_epoch or 0)
    if user_stream.readers > limit:
        user_stream.detach()
        return _error(429, TOO_MANY_SESSIONS, f"At most {limit} streams per user.")
    detached = threading.Lock()

    def detach() -> None:
        """Free the reader's slot, once: when the generator ends (a failed write makes
        the server close it), or when the response closes without ever running it (a
        HEAD request, a client gone before the first byte)."""
        if detached.acquire(blocking=False):
            user_stream.detach()

    def generate() -> Iterator[str]:
        after = 0
        try:
            yield "retry: 2000\n\n"
            if last is not None:
                life, number = last
                if life != user_stream.life or number > user_stream.seq:
                    # Another life of the stream (it expired, the worker restarted): its
                    # numbers say nothing of this one's. Start over, and say so.
                    yield _sse("reset", {"reason": UNKNOWN})
                else:
                    after = number
            while True:
                # A comment every half interval: the first write to a client that went
                # away draws its TCP reset, the next one fails and ends this generator.
                batch = user_stream.read(after, keepalive / 2)
                if batch.closed:
                    yield _sse("close", {"reason": batch.closed})
                    return
                if batch.missed:
                    yield _sse("reset", {"reason": REPLAY_OVERFLOW})
                if not batch.commands:
                    yield ": keep-alive\n\n"
                    continue
                out = []
                for seq, command, args in batch.commands:
                    event_id = f"{user_stream.life}-{seq}"
                    if SAFE_EVENT_NAME.fullmatch(command):
                        out.append(_sse(command, args, event_id))
                    else:
                        out.append(_sse("command", {"name": command, "args": args}, event_id))
                    after = seq
                yield "".join(out)
        finally:
            detach()

    logger.info("stream opened for user %s (after %s)", name,
                f"{last[0]}-{last[1]}" if last and last[0] else last[1] if last else "none")
    # Unbuffered on eventlet: see unbuffered_stream (installed by create_app).
    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.call_on_close(detach)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response

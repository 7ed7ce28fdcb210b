"""The JSON error response of every HTTP API endpoint: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from flask import Response
from flask import jsonify

from ..core.errors import error_payload


def error_response(status: int, code: str, message: str, *,
                   challenge: str | None = None) -> Response:
    """A JSON error; ``challenge`` is the ``WWW-Authenticate`` of a 401 (RFC 9110)."""
    response = jsonify(error=error_payload(code, message))
    response.status_code = status
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    return response

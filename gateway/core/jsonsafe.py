"""Strict JSON: only what every JSON parser accepts (a browser's ``JSON.parse`` included),
nested no deeper than a limit. IO-free.

Python's :mod:`json` reads and writes ``NaN``, ``Infinity`` and ``-Infinity`` (and reads
``1e999`` as ``inf``), which are not JSON: socket.io-client drops a connection on such a
packet, and a session that replays it on every resume is wedged. It also parses nesting
recursively, so a body a hundred thousand brackets deep raises ``RecursionError``.

- :func:`loads_strict` reads UTF-8 text (``bytes`` or ``str``); it refuses non-finite
  numbers, and nesting deeper than ``max_depth``, which it measures *before* parsing
  with a non-recursive scan of the brackets outside strings (linear time, so a deep
  body costs no more than a flat one of its size).
- :func:`dumps_strict` writes compact JSON and refuses non-finite numbers (and anything
  that is not JSON: sets, objects, circular references).

Both raise :class:`JsonRejected`, a ``ValueError`` that is also a
:class:`~gateway.core.errors.GatewayError` with the code ``bad_request``.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from .errors import BAD_REQUEST
from .errors import GatewayError

#: Deepest nesting accepted by default: ``{"args": {"a": [..]}}`` is 3 deep.
MAX_DEPTH = 32

_ESCAPE = re.compile(r"\\.", re.DOTALL)  # a backslash and the character it escapes
_STRING = re.compile(r'"[^"]*"')  # once escapes are gone, a string is this
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonRejected(GatewayError, ValueError):
    """The text is not strict JSON, or the value cannot be written as strict JSON."""

    code = BAD_REQUEST


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of ``text`` nest (0 for a scalar), without parsing.

    Brackets inside strings do not count. Linear time and no recursion, whatever the
    input. For text that is not valid JSON the figure is only an estimate, but for
    every prefix a parser accepts it is exact, so a parser never goes deeper than it.
    """
    if text.count("[") + text.count("{") == 0:
        return 0
    # Escapes first (``\\"`` is not the end of a string), then the strings themselves;
    # both regular expressions match without backtracking over what they consumed.
    outside = _STRING.sub("", _ESCAPE.sub("", text))
    brackets = outside.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _refuse_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected(f"The number {text[:40]} is out of range.")
    return value


def loads_strict(text: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON (UTF-8 when given bytes); raise :class:`JsonRejected` saying why not."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected(f"The body is not valid UTF-8 (at byte {exc.start}).") from None
    if not isinstance(text, str):
        raise JsonRejected("JSON text must be a string or UTF-8 bytes.")
    # Cheap bound first: fewer opening brackets than the limit cannot nest deeper.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonRejected(f"The JSON nests deeper than {max_depth} levels.")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except JsonRejected:
        raise
    except RecursionError:  # not reachable after the depth check; never a 500 anyway
        raise JsonRejected(f"The JSON nests deeper than {max_depth} levels.") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise JsonRejected(f"Not valid JSON: {exc}.") from None


def dumps_strict(value: Any, max_depth: int | None = None) -> str:
    """Compact JSON of ``value``; :class:`JsonRejected` for NaN, infinities, non-JSON
    values, circular references, or (when given) nesting deeper than ``max_depth``."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise JsonRejected(f"Not representable as JSON: {exc}.") from None
    if max_depth is not None and nesting_depth(text) > max_depth:
        raise JsonRejected(f"The JSON nests deeper than {max_depth} levels.")
    return text

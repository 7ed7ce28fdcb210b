"""Who a send is for: one session, a user's sessions (by id or by name), a topic, or
everyone. The address of every send, on the bus and in ``POST /api/v1/push``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import BAD_REQUEST
from .errors import GatewayError

#: What a send can be addressed to. ``user`` is a user id, ``user_name`` a user name:
#: two kinds, never matched against each other (a user named "2" is not user 2).
KINDS = ("session", "user", "user_name", "topic", "everyone")

_TO_FORMS = ('"to" must be one of {"session": ID}, {"user": {"id": ID}}, '
             '{"user": {"name": NAME}}, {"topic": NAME}, {"everyone": true}.')


def _user_id(value: Any) -> str | None:
    """A user id as the registry keys it (decimal digits), or None if ``value`` is not one
    (a database id: a 64-bit integer at most)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        return str(int(value))
    return None


@dataclass(frozen=True)
class Target:
    """Who a send is for: one session, a user's sessions (by id, or by name), a topic,
    or everyone."""

    kind: str
    value: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GatewayError(f"Unknown kind of address {self.kind!r}.", code=BAD_REQUEST)
        if self.kind == "user" and (self.value is None or _user_id(self.value) != self.value):
            raise GatewayError(f"A user target is a user id (digits), not {self.value!r}; "
                               "a name is a user_name target.", code=BAD_REQUEST)

    def to_dict(self) -> dict[str, Any]:
        """The address as ``POST /api/v1/push`` and the bus write it."""
        if self.kind == "everyone":
            return {"everyone": True}
        if self.kind == "user":
            return {"user": {"id": int(self.value or 0)}}
        if self.kind == "user_name":
            return {"user": {"name": self.value}}
        return {self.kind: self.value}

    @classmethod
    def of(cls, session: str | None = None, user: str | int | None = None,
           topic: str | None = None, everyone: bool = False, *,
           user_name: str | None = None) -> Target:
        """Build a target from exactly one of the keyword arguments.

        ``user`` is a user id (an int, or a string of digits); ``user_name`` a user name.
        """
        given: list[tuple[str, str | int | None]] = [(kind, value) for kind, value in
                 (("session", session), ("user", user), ("user_name", user_name),
                  ("topic", topic)) if value is not None]
        if everyone:
            given.append(("everyone", None))
        if len(given) != 1:
            raise GatewayError(
                "Address a send to exactly one of session=, user=, user_name=, topic= or "
                "everyone=True.", code=BAD_REQUEST)
        kind, value = given[0]
        if kind == "user":
            user_id = _user_id(value)
            if user_id is None:
                raise GatewayError(
                    f"user= takes a user id (a number), not {value!r}; address a user by "
                    "name with user_name=.", code=BAD_REQUEST)
            return cls("user", user_id)
        return cls(kind, None if value is None else str(value))

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        """Parse ``{"session": ID} | {"user": {"id": ID}} | {"user": {"name": NAME}} |
        {"topic": NAME} | {"everyone": true}``; a bare number ``{"user": 5}`` is an id.
        A bare string ``{"user": "5"}`` is refused: it does not say which it is."""
        if not isinstance(data, dict) or len(data) != 1:
            raise GatewayError(_TO_FORMS, code=BAD_REQUEST)
        (kind, value), = data.items()
        if kind == "everyone" and value is True:
            return cls("everyone")
        if kind == "user":
            return cls._user_from(value)
        if kind in ("session", "topic") and isinstance(value, (str, int)) \
                and not isinstance(value, bool) and str(value):
            return cls(kind, str(value))
        raise GatewayError(f'"to" has an invalid address {kind!r}. {_TO_FORMS}',
                           code=BAD_REQUEST)

    @classmethod
    def _user_from(cls, value: Any) -> Target:
        if isinstance(value, int) and not isinstance(value, bool):
            user_id = _user_id(value)
            if user_id is not None:
                return cls("user", user_id)
        elif isinstance(value, str):
            raise GatewayError(
                f'"to": {{"user": {json.dumps(value[:64])}}} does not say whether it is a '
                'user id or a user name: write {"user": {"id": ID}} or '
                '{"user": {"name": NAME}}.',
                code=BAD_REQUEST)
        elif isinstance(value, dict) and len(value) == 1:
            (key, inner), = value.items()
            if key == "id":
                user_id = _user_id(inner)
                if user_id is not None:
                    return cls("user", user_id)
            elif key == "name" and isinstance(inner, str) and inner:
                return cls("user_name", inner)
        raise GatewayError('"to": "user" must be {"id": ID} (a number) or {"name": NAME} '
                           '(a non-empty string).', code=BAD_REQUEST)

"""Sessions follow the account: a periodic check closes, on this worker, every live session
whose user was deleted or disabled, or whose login epoch moved on (password changed),
since the session began.

The login cookie carries the same epoch (``auth.User.get_id``), so the HTTP side and new
connections are refused at once; this check ends the sessions already open, within
``GATEWAY_ACCOUNT_CHECK_SECONDS``, with one query per check.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from auth.models import db
from auth.models import stale_logins

from ..core.errors import LOGGED_OUT

if TYPE_CHECKING:
    from ..cluster.hub import Hub

logger = logging.getLogger("gateway")

MESSAGE = "Your account changed; log in again."


class AccountCheck:
    """Called periodically (``hub.every``, in an app context); returns how many it closed."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def __call__(self) -> int:
        sessions = [s for s in self.hub.registry.all() if not s.closed]
        streams = self.hub.streams.all()  # the SSE readers' streams follow the account too
        if not sessions and not streams:
            return 0
        try:
            stale = stale_logins({(s.user.id, s.user.auth_epoch) for s in sessions}
                                 | {(s.user_id, s.auth_epoch) for s in streams})
        finally:
            db.session.remove()  # no transaction left open between checks
        for stream in streams:
            if (stream.user_id, stream.auth_epoch) in stale:
                stream.close(LOGGED_OUT)
        # Only the sessions begun under a stale login: one the user opened after
        # logging in again (new password, or enabled again) stays.
        closed: Counter[str] = Counter()
        for session in sessions:
            if (session.user.id, session.user.auth_epoch) in stale:
                session.close(LOGGED_OUT, MESSAGE)
                closed[session.user.name] += 1
        for name, count in closed.items():
            logger.info("account %s changed: %d live session(s) closed", name, count)
        return sum(closed.values())


def watch(hub: Hub, interval: float) -> AccountCheck:
    """Run the account check on ``hub`` every ``interval`` seconds once it starts."""
    check = AccountCheck(hub)
    hub.every("account-check", interval, check)
    return check

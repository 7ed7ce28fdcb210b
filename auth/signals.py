"""Signals auth sends, for the rest of the app to act on without auth importing it."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent by ``POST /logout`` after the account's logins ended, with ``user_id`` and
#: ``name``. Receivers return how many live sessions they closed (the gateway
#: closes every session of the account, on every worker).
logged_out = _signals.signal("logged-out")

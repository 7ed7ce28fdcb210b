"""Failed-login limits per account name and per client address, kept in the database.

Every failed login adds two rows (one keyed by the account name, one by the address);
a login is refused, before its password is checked, while either key has reached its
limit within the window. Rows live in the shared database, so every worker agrees.
A successful login clears the account's rows (not the address's).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .models import db

if TYPE_CHECKING:
    from gateway.settings import Settings

KEY_MAX = 80


class LoginFailure(db.Model):  # type: ignore[name-defined]
    """One failed login, under one key (so two rows per failure)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``account:<sha256 of the name>`` (a mistyped password may land in the name
    #: field, so names are not kept in clear) or ``address:<client address>``.
    key: Mapped[str] = mapped_column(String(KEY_MAX))
    at: Mapped[float] = mapped_column(index=True)  # Unix time


def account_key(name: str) -> str:
    return "account:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address: str) -> str:
    return ("address:" + address)[:KEY_MAX]


def wait_text(seconds: int) -> str:
    """``seconds`` in words, rounded up to what a person needs to know."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class LoginLimiter:
    account_limit: int
    address_limit: int
    window: float  # seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimiter:
        return cls(settings.LOGIN_LIMIT_ACCOUNT, settings.LOGIN_LIMIT_ADDRESS,
                   settings.LOGIN_WINDOW_SECONDS)

    def retry_after(self, name: str, address: str, now: float | None = None) -> int | None:
        """Seconds until a login for ``name`` from ``address`` may be tried, or None if now."""
        now = time.time() if now is None else now
        waits = [self._wait(key, limit, now) for key, limit in
                 ((account_key(name), self.account_limit),
                  (address_key(address), self.address_limit))]
        longest = max((w for w in waits if w is not None), default=None)
        return None if longest is None else max(1, math.ceil(longest))

    def _wait(self, key: str, limit: int, now: float) -> float | None:
        # The limit-th most recent failure in the window: while it is in the window, the
        # key is at its limit; it leaves the window at ``at + window``.
        at = db.session.execute(
            db.select(LoginFailure.at)
            .where(LoginFailure.key == key, LoginFailure.at > now - self.window)
            .order_by(LoginFailure.at.desc())
            .offset(limit - 1)
            .limit(1)
        ).scalar_one_or_none()
        return None if at is None else at + self.window - now

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        """Count a failed login; forget failures older than the window."""
        now = time.time() if now is None else now
        db.session.add_all([LoginFailure(key=account_key(name), at=now),
                            LoginFailure(key=address_key(address), at=now)])
        db.session.execute(db.delete(LoginFailure).where(LoginFailure.at <= now - self.window))
        db.session.commit()

    def succeeded(self, name: str) -> None:
        """A correct password: the account starts again from zero."""
        db.session.execute(db.delete(LoginFailure).where(LoginFailure.key == account_key(name)))
        db.session.commit()

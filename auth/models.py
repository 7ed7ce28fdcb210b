"""Users, stored through SQLAlchemy; passwords hashed with Argon2."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from datetime import timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

db = SQLAlchemy()
_hasher = PasswordHasher()
logger = logging.getLogger("auth")

NAME_MAX = 64
#: Users looked up per query when checking live sessions (below SQLite's variable limit).
CHECK_CHUNK = 500


def _now() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    #: Bumped whenever the account's existing logins must end (password changed,
    #: disabled): the login cookie and every live session carry the epoch they began in.
    auth_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<User {self.name}>"

    def get_id(self) -> str:
        """Flask-Login's id for the cookie: ``"ID:EPOCH"``, stale once the epoch moves on."""
        return f"{self.id}:{self.auth_epoch or 0}"

    @classmethod
    def from_login_id(cls, login_id: str) -> User | None:
        """The active user a cookie's ``"ID:EPOCH"`` stands for, or None if it is stale."""
        parsed = _parse_login_id(login_id)
        if parsed is None:
            return None
        user = db.session.get(cls, parsed[0])
        if user is None or not _login_stands(user.disabled, user.auth_epoch, parsed[1]):
            return None
        return user

    @classmethod
    def login_row(cls, login_id: str) -> tuple[int, str, bool, int] | None:
        """``(id, name, is_admin, auth_epoch)`` of the active user behind ``login_id``.

        What :meth:`from_login_id` checks, as one plain SELECT on a pooled connection,
        without the ORM session, identity map and instance loading: the Socket.IO connect
        path, which needs no User object, at a fraction of the CPU (it runs for every
        connection).
        """
        parsed = _parse_login_id(login_id)
        if parsed is None:
            return None
        with db.engine.connect() as connection:
            row = connection.execute(_LOGIN_ROW, {"user_id": parsed[0]}).first()
        if row is None or not _login_stands(row.disabled, row.auth_epoch, parsed[1]):
            return None
        return row.id, row.name, bool(row.is_admin), row.auth_epoch

    def end_logins(self) -> None:
        """Make every existing login of this account stale (cookies and live sessions)."""
        self.auth_epoch = (self.auth_epoch or 0) + 1

    def change_password(self, password: str) -> None:
        """A new password; the logins made with the old one end."""
        self.set_password(password)
        self.end_logins()

    def disable(self) -> None:
        self.disabled = True
        self.end_logins()

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users at login
        return not self.disabled

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if _hasher.check_needs_rehash(self.password_hash):
            self.set_password(password)
            db.session.commit()
        return True

    @classmethod
    def by_name(cls, name: str) -> User | None:
        return db.session.execute(db.select(cls).filter_by(name=name)).scalar_one_or_none()


def _parse_login_id(login_id: str) -> tuple[int, int] | None:
    """``"ID:EPOCH"`` as two numbers, or None when it is not of that form."""
    user_id, _, epoch = login_id.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    return int(user_id), int(epoch)


def _login_stands(disabled: bool, current_epoch: int | None, epoch: int) -> bool:
    """A login made in ``epoch`` still stands for an account in this state."""
    return not disabled and (current_epoch or 0) == epoch


_columns = User.__table__.c
_LOGIN_ROW = (select(_columns.id, _columns.name, _columns.is_admin, _columns.auth_epoch,
                     _columns.disabled)
              .where(_columns.id == bindparam("user_id")))


def stale_logins(logins: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """The ``(user id, epoch)`` pairs that no longer stand: user deleted or disabled, or
    the epoch moved on. Ids that are not a user id are left alone. One query per
    :data:`CHECK_CHUNK` users."""
    wanted = {(user_id, epoch) for user_id, epoch in logins if user_id.isdigit()}
    ids = sorted({int(user_id) for user_id, _ in wanted})
    current: dict[str, int] = {}  # user id -> epoch, for users that still stand
    for start in range(0, len(ids), CHECK_CHUNK):
        rows = db.session.execute(
            db.select(User.id, User.auth_epoch, User.disabled)
            .where(User.id.in_(ids[start:start + CHECK_CHUNK]))
        )
        current.update((str(user_id), epoch) for user_id, epoch, disabled in rows
                       if not disabled)
    return {(user_id, epoch) for user_id, epoch in wanted if current.get(user_id) != epoch}


def upgrade_schema() -> None:
    """Add the columns that are newer than an existing database (``create_all`` only
    creates missing tables)."""
    inspector = inspect(db.engine)
    if not inspector.has_table(User.__tablename__):
        return
    columns = {column["name"] for column in inspector.get_columns(User.__tablename__)}
    if "auth_epoch" in columns:
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(text(
                "ALTER TABLE users ADD COLUMN auth_epoch INTEGER NOT NULL DEFAULT 0"))
    except DBAPIError:
        # Another worker starting at the same moment may have added it first.
        columns = {c["name"] for c in inspect(db.engine).get_columns(User.__tablename__)}
        if "auth_epoch" not in columns:
            raise
    logger.info("database upgraded: added users.auth_epoch")


# A hash to verify against when the user does not exist, so a login takes the same
# time whether or not the name is known.
DUMMY_HASH = _hasher.hash("not a real password")


def verify_dummy(password: str) -> None:
    try:
        _hasher.verify(DUMMY_HASH, password)
    except VerificationError:
        pass

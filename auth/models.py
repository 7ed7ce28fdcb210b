"""Users, stored through SQLAlchemy; passwords hashed with Argon2."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.schema import CreateIndex
from sqlalchemy.schema import CreateTable

from .hashing import offload

db = SQLAlchemy()
_hasher = PasswordHasher()
logger = logging.getLogger("auth")

NAME_MAX = 64
#: Users looked up per query when checking live sessions (below SQLite's variable limit).
CHECK_CHUNK = 500
#: Login epochs are random in [EPOCH_MIN, EPOCH_LIMIT): below 2**53, so they stay exact
#: as JSON numbers (JavaScript), and never below 2**20, where the old counter scheme's
#: epochs (0, 1, 2, ...) lie (see :func:`upgrade_schema`).
EPOCH_MIN = 2 ** 20
EPOCH_LIMIT = 2 ** 53


def _now() -> datetime:
    return datetime.now(UTC)


def new_epoch(old: int | None = None) -> int:
    """A random login epoch, different from ``old``."""
    while True:
        epoch = EPOCH_MIN + secrets.randbelow(EPOCH_LIMIT - EPOCH_MIN)
        if epoch != old:
            return epoch


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """An account. Its login cookie is ``"ID:EPOCH"`` (:meth:`get_id`), and neither part
    is ever shared with another account: ids are never reused (AUTOINCREMENT on SQLite;
    PostgreSQL's sequences never hand out an id twice either), and every account starts
    in a random epoch that moves to a new random one whenever its logins must end.
    """

    __tablename__ = "users"
    # SQLite: without AUTOINCREMENT a new row takes max(id) + 1, the id of the newest
    # user if it was deleted, and with it that user's cookies (upgrade_schema migrates).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    #: Random, and moved to a new random value whenever the account's existing logins
    #: must end (password changed, disabled, logout): the login cookie and every live
    #: session carry the epoch they began in. Unguessable, so a cookie never matches
    #: another account, nor this one after its epoch moved (not even back).
    auth_epoch: Mapped[int] = mapped_column(BigInteger, default=lambda: new_epoch(),
                                            server_default="0")

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
        """Make every existing login of this account stale (cookies and live sessions):
        a new random epoch, never the one before."""
        self.auth_epoch = new_epoch(self.auth_epoch)

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

    # Argon2 runs off the event loop, at most two at once (auth.hashing).
    def set_password(self, password: str) -> None:
        self.password_hash = offload(_hasher.hash, password)

    def check_password(self, password: str) -> bool:
        try:
            offload(_hasher.verify, self.password_hash, password)
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
    """Bring an existing ``users`` table up to date (``create_all`` only creates missing
    tables): the ``auth_epoch`` column, 64 bits wide; ids that are never reused (SQLite:
    AUTOINCREMENT); random login epochs. Each step is idempotent and safe when several
    workers start at once."""
    inspector = inspect(db.engine)
    if not inspector.has_table(User.__tablename__):
        return
    columns = {column["name"] for column in inspector.get_columns(User.__tablename__)}
    if "auth_epoch" not in columns:
        _add_epoch_column()
    if db.engine.dialect.name == "sqlite":
        _sqlite_autoincrement()
    else:
        # PostgreSQL (and the others) hand out ids from a sequence, which never gives
        # the same id twice, deleted rows or not: nothing to migrate for the ids.
        _widen_epoch_column()
    _randomize_counter_epochs()


def _add_epoch_column() -> None:
    try:
        with db.engine.begin() as connection:
            connection.execute(text(
                "ALTER TABLE users ADD COLUMN auth_epoch BIGINT NOT NULL DEFAULT 0"))
    except DBAPIError:
        # Another worker starting at the same moment may have added it first.
        columns = {c["name"] for c in inspect(db.engine).get_columns(User.__tablename__)}
        if "auth_epoch" not in columns:
            raise
    logger.info("database upgraded: added users.auth_epoch")


def _widen_epoch_column() -> None:
    """Random epochs need 53 bits: a 32-bit ``INTEGER`` column (made when epochs were a
    counter) becomes ``BIGINT``. SQLite's INTEGER is 64 bits already."""
    (column,) = [c for c in inspect(db.engine).get_columns(User.__tablename__)
                 if c["name"] == "auth_epoch"]
    if isinstance(column["type"], BigInteger):
        return
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        statement = "ALTER TABLE users ALTER COLUMN auth_epoch TYPE BIGINT"
    elif dialect in ("mysql", "mariadb"):
        statement = "ALTER TABLE users MODIFY auth_epoch BIGINT NOT NULL DEFAULT 0"
    else:
        raise RuntimeError(f"users.auth_epoch must be a 64-bit integer column; change its "
                           f"type to BIGINT by hand on this {dialect} database.")
    with db.engine.begin() as connection:  # a second worker's ALTER waits, then redoes it
        connection.execute(text(statement))
    logger.info("database upgraded: users.auth_epoch is now BIGINT")


def _sqlite_table_sql(connection: Any) -> str:
    row = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'users'").fetchone()
    return str(row[0]) if row else ""


def _sqlite_autoincrement() -> None:
    """Rebuild a ``users`` table made without AUTOINCREMENT, on which SQLite hands a new
    account the id of the newest account if it was deleted (max(id) + 1).

    SQLite cannot add AUTOINCREMENT to a table: the table is rebuilt the way SQLite
    documents (create the new one, copy the rows, drop the old, rename the new, create
    the indexes), in one transaction. ``BEGIN IMMEDIATE`` takes the write lock before
    the table is looked at again, so a second worker starting at the same moment waits,
    then finds the work done. (An id deleted before this migration above the highest
    remaining one can still be handed out once; that account's random epoch keeps the
    deleted user's cookies out.)
    """
    raw = db.engine.raw_connection()
    try:
        connection: Any = raw.driver_connection  # sqlite3.Connection
        if "AUTOINCREMENT" in _sqlite_table_sql(connection).upper():
            return  # the usual case: no lock taken
        isolation = connection.isolation_level
        connection.isolation_level = None  # BEGIN and COMMIT are ours
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if "AUTOINCREMENT" in _sqlite_table_sql(connection).upper():
                    connection.execute("ROLLBACK")
                    return  # another worker did it meanwhile
                old = {row[1] for row in connection.execute("PRAGMA table_info(users)")}
                kept = ", ".join(f'"{c.name}"' for c in User.__table__.columns if c.name in old)
                rebuilt = User.__table__.to_metadata(MetaData(), name="users_rebuilt")
                dialect = db.engine.dialect
                connection.execute(str(CreateTable(rebuilt).compile(dialect=dialect)))
                connection.execute(f"INSERT INTO users_rebuilt ({kept}) SELECT {kept} FROM users")
                connection.execute("DROP TABLE users")  # and its indexes
                connection.execute("ALTER TABLE users_rebuilt RENAME TO users")
                for index in User.__table__.indexes:  # ix_users_name, unique, as before
                    connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            connection.isolation_level = isolation
    finally:
        raw.close()
    logger.info("database upgraded: users ids are AUTOINCREMENT (never reused)")


def _randomize_counter_epochs() -> None:
    """Accounts still in an epoch of the old counter scheme (0, 1, 2, ... below
    :data:`EPOCH_MIN`) move to a random one. This ends their existing logins once: after
    the upgrade everybody logs in again. The ``WHERE`` repeats the test, so a second
    worker doing the same at the same moment changes nothing more."""
    table = User.__table__
    old = (table.c.auth_epoch < EPOCH_MIN) | table.c.auth_epoch.is_(None)
    with db.engine.begin() as connection:
        ids = connection.execute(select(table.c.id).where(old)).scalars().all()
        if ids:
            connection.execute(
                update(table).where(table.c.id == bindparam("user_id"), old)
                .values(auth_epoch=bindparam("new_epoch")),
                [{"user_id": user_id, "new_epoch": new_epoch()} for user_id in ids])
    if ids:
        logger.warning("database upgraded: %d account(s) moved to random login epochs; "
                       "their existing logins ended (they log in again)", len(ids))


# A hash to verify against when the user does not exist, so a login takes the same
# time whether or not the name is known.
DUMMY_HASH = _hasher.hash("not a real password")


def verify_dummy(password: str) -> None:
    try:
        offload(_hasher.verify, DUMMY_HASH, password)
    except VerificationError:
        pass
